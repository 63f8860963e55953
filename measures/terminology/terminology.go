// Package terminology holds expanded FHIR ValueSets in memory and answers
// code-membership questions for the measure engine.
//
// Expansions are loaded once per measure package (from ValueSet resources
// carrying expansion.contains) and indexed by code system and code, so a
// membership test costs two map lookups and no allocation.
package terminology

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/elm/cql"
)

// ErrUnknownValueSet is returned when a value set is not in the index. It
// wraps elm.ErrValueSetNotFound so the engine recognises it.
var ErrUnknownValueSet = fmt.Errorf("unknown value set (%w)", elm.ErrValueSetNotFound)

// Code is one member of an expansion.
type Code = cql.Code

// ValueSet is one expanded value set.
type ValueSet struct {
	URL     string
	Version string
	Name    string
	// bySystem maps system → code → member index; codes are grouped by
	// system because CQL membership compares both.
	bySystem map[string]map[string]int32
	// byCode maps a bare code to one member, for membership of a String
	// (CQL compares code only when the operand carries no system).
	byCode map[string]int32
	codes  []Code
}

// Contains reports whether system|code is a member; an empty system
// matches a code of any system (CQL's String in ValueSet).
func (v *ValueSet) Contains(system, code string) bool {
	if v == nil {
		return false
	}
	if system == "" {
		return v.ContainsCode(code)
	}
	_, ok := v.bySystem[system][code]
	return ok
}

// ContainsCode reports whether code is a member in any code system.
func (v *ValueSet) ContainsCode(code string) bool {
	if v == nil {
		return false
	}
	_, ok := v.byCode[code]
	return ok
}

// Codes returns the members in expansion order. The slice is shared; do not modify it.
func (v *ValueSet) Codes() []Code { return v.codes }

// Len returns the number of members.
func (v *ValueSet) Len() int { return len(v.codes) }

// Index is an immutable set of expanded value sets, safe for concurrent use
// once built.
type Index struct {
	byURL        map[string]*ValueSet // url → the last version added
	byURLVersion map[string]*ValueSet // url|version
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{byURL: map[string]*ValueSet{}, byURLVersion: map[string]*ValueSet{}}
}

// Lookup finds a value set by canonical URL; version may be empty (any
// version). A url of the form "url|version" is accepted too.
func (x *Index) Lookup(url, version string) (*ValueSet, error) {
	if version == "" {
		if i := lastBar(url); i >= 0 {
			url, version = url[:i], url[i+1:]
		}
	}
	if version != "" {
		if vs, ok := x.byURLVersion[url+"|"+version]; ok {
			return vs, nil
		}
	}
	// Measures pin value sets by URL only; a version asked for but absent
	// falls back to the one expansion shipped, as VSAC-based engines do.
	if vs, ok := x.byURL[url]; ok {
		return vs, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownValueSet, url)
}

// ValueSet implements elm.Terminology.
func (x *Index) ValueSet(_ context.Context, url, version string) (elm.CodeSet, error) {
	vs, err := x.Lookup(url, version)
	if err != nil {
		return nil, err
	}
	return vs, nil
}

// InValueSet reports whether system|code is in the value set url.
func (x *Index) InValueSet(url, version, system, code string) (bool, error) {
	vs, err := x.Lookup(url, version)
	if err != nil {
		return false, err
	}
	return vs.Contains(system, code), nil
}

// URLs lists the canonical URLs held, sorted.
func (x *Index) URLs() []string {
	out := make([]string, 0, len(x.byURL))
	for u := range x.byURL {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// Len returns the number of distinct value-set URLs held.
func (x *Index) Len() int { return len(x.byURL) }

func lastBar(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '|' {
			return i
		}
	}
	return -1
}

// valueSetJSON is the subset of a FHIR ValueSet the index needs.
type valueSetJSON struct {
	ResourceType string `json:"resourceType"`
	URL          string `json:"url"`
	Version      string `json:"version"`
	Name         string `json:"name"`
	Expansion    *struct {
		Contains []containsJSON `json:"contains"`
	} `json:"expansion"`
	Compose *struct {
		Include []struct {
			System  string `json:"system"`
			Version string `json:"version"`
			Concept []struct {
				Code    string `json:"code"`
				Display string `json:"display"`
			} `json:"concept"`
			ValueSet []string `json:"valueSet"`
			Filter   []any    `json:"filter"`
		} `json:"include"`
	} `json:"compose"`
}

type containsJSON struct {
	System   string         `json:"system"`
	Version  string         `json:"version"`
	Code     string         `json:"code"`
	Display  string         `json:"display"`
	Abstract bool           `json:"abstract"`
	Contains []containsJSON `json:"contains"`
}

// AddJSON adds one ValueSet resource or a Bundle of them, read from r.
func (x *Index) AddJSON(r io.Reader) (int, error) {
	var head struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return 0, fmt.Errorf("terminology: malformed JSON: %w", err)
	}
	switch head.ResourceType {
	case "ValueSet":
		return 1, x.AddValueSet(raw)
	case "Bundle":
		n := 0
		for i, e := range head.Entry {
			var rt struct {
				ResourceType string `json:"resourceType"`
			}
			if err := json.Unmarshal(e.Resource, &rt); err != nil {
				return n, fmt.Errorf("terminology: bundle entry %d: %w", i, err)
			}
			if rt.ResourceType != "ValueSet" {
				continue
			}
			if err := x.AddValueSet(e.Resource); err != nil {
				return n, fmt.Errorf("terminology: bundle entry %d: %w", i, err)
			}
			n++
		}
		return n, nil
	default:
		return 0, fmt.Errorf("terminology: expected a ValueSet or Bundle, got resourceType %q", head.ResourceType)
	}
}

// AddValueSet indexes one ValueSet resource. It needs an expansion, or a
// compose made only of enumerated concepts (which is its own expansion).
func (x *Index) AddValueSet(raw []byte) error {
	var v valueSetJSON
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("terminology: malformed ValueSet: %w", err)
	}
	if v.ResourceType != "ValueSet" {
		return fmt.Errorf("terminology: expected a ValueSet, got resourceType %q", v.ResourceType)
	}
	if v.URL == "" {
		return errors.New("terminology: ValueSet without url")
	}
	vs := &ValueSet{URL: v.URL, Version: v.Version, Name: v.Name,
		bySystem: map[string]map[string]int32{}, byCode: map[string]int32{}}
	switch {
	case v.Expansion != nil:
		var walk func([]containsJSON)
		walk = func(cs []containsJSON) {
			for _, c := range cs {
				if c.Code != "" && !c.Abstract {
					vs.add(Code{System: c.System, Version: c.Version, Code: c.Code, Display: c.Display})
				}
				walk(c.Contains)
			}
		}
		walk(v.Expansion.Contains)
	case v.Compose != nil:
		for _, inc := range v.Compose.Include {
			if len(inc.ValueSet) > 0 || len(inc.Filter) > 0 || len(inc.Concept) == 0 {
				return fmt.Errorf("terminology: ValueSet %s has no expansion and its compose is not a plain list of concepts", v.URL)
			}
			for _, c := range inc.Concept {
				vs.add(Code{System: inc.System, Version: inc.Version, Code: c.Code, Display: c.Display})
			}
		}
	default:
		return fmt.Errorf("terminology: ValueSet %s has neither expansion nor compose", v.URL)
	}
	x.byURL[v.URL] = vs
	if v.Version != "" {
		x.byURLVersion[v.URL+"|"+v.Version] = vs
	}
	return nil
}

func (v *ValueSet) add(c Code) {
	m := v.bySystem[c.System]
	if m == nil {
		m = map[string]int32{}
		v.bySystem[c.System] = m
	}
	if _, dup := m[c.Code]; dup {
		return
	}
	i := int32(len(v.codes))
	v.codes = append(v.codes, c)
	m[c.Code] = i
	if _, ok := v.byCode[c.Code]; !ok {
		v.byCode[c.Code] = i
	}
}
