package measure

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/terminology"
)

// ErrBadContent wraps every problem with a measure package on disk.
var ErrBadContent = errors.New("bad measure content")

// Content is a measure package directory laid out as
//
//	libraries/*.json                 FHIR Library resources with ELM (application/elm+json)
//	measures/<NAME>/Measure.json     the Measure
//	measures/<NAME>/valuesets.json   a Bundle (or one ValueSet) of expanded value sets
//
// Value sets may also be shipped as valuesets/*.json shared by all measures.
type Content struct {
	Dir string
}

// Package is a measure loaded from disk with everything needed to compile it.
type Package struct {
	Definition *Definition
	// Root is the primary library; Libraries the closure of its includes
	// (Root first).
	Root      *elm.Library
	Libraries []*elm.Library
	// LibraryFiles maps "Name|Version" to the file each library came from.
	LibraryFiles map[string]string
	Terminology  *terminology.Index
	// MeasureFile is the path of Measure.json.
	MeasureFile string
	// statements are the root library's definitions, to check the Measure's
	// criteria before compiling.
	statements []statement
}

type statement struct {
	name     string
	function bool
	operands int
}

// Measures lists the measure names (folders under measures/) in the content.
func (c Content) Measures() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(c.Dir, "measures"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadContent, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(c.Dir, "measures", e.Name(), "Measure.json")); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	return out, nil
}

// Definition reads only the Measure of a named measure (cheap: used as a
// cache key before loading the libraries).
func (c Content) Definition(name string) (*Definition, string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return nil, "", fmt.Errorf("%w: invalid measure name %q", ErrBadContent, name)
	}
	file := filepath.Join(c.Dir, "measures", name, "Measure.json")
	raw, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			known, _ := c.Measures()
			return nil, file, fmt.Errorf("%w: measure %q not found (%s is missing; measures in %s: %s)", ErrBadContent, name, file, c.Dir, strings.Join(known, ", "))
		}
		return nil, file, fmt.Errorf("%w: %w", ErrBadContent, err)
	}
	def, err := ParseDefinition(raw)
	if err != nil {
		return nil, file, fmt.Errorf("%w: %s: %w", ErrBadContent, file, err)
	}
	return def, file, nil
}

// libraryHeader is what identifies a FHIR Library file without decoding its ELM.
type libraryHeader struct {
	file    string
	url     string
	name    string
	version string
}

// Load reads the named measure, resolves its library closure and loads its
// value sets. Every failure names the file and the missing piece.
func (c Content) Load(ctx context.Context, name string) (*Package, error) {
	def, file, err := c.Definition(name)
	if err != nil {
		return nil, err
	}
	headers, err := c.libraryHeaders()
	if err != nil {
		return nil, err
	}
	return Assemble(ctx, def, file, contentSource{c: c, name: name, headers: headers})
}

// contentSource finds libraries and value sets in a Content directory.
type contentSource struct {
	c       Content
	name    string
	headers []libraryHeader
}

func (s contentSource) Library(_ context.Context, url, name, version string) ([]byte, string, error) {
	h := findLibrary(s.headers, url, name, version)
	if h == nil {
		return nil, "", nil
	}
	raw, err := os.ReadFile(h.file)
	if err != nil {
		return nil, h.file, err
	}
	return raw, h.file, nil
}

func (s contentSource) Terminology(context.Context, []ValueSetRef) (*terminology.Index, error) {
	return s.c.loadValueSets(s.name)
}

func (s contentSource) LibrariesWhere() string { return filepath.Join(s.c.Dir, "libraries", "*.json") }

func (s contentSource) ValueSetsWhere() string {
	return filepath.Join(s.c.Dir, "measures", s.name, "valuesets.json")
}

func orAny(v string) string {
	if v == "" {
		return "(any)"
	}
	return v
}

// canonicalName is the last path segment of a canonical or ELM include path.
func canonicalName(u string) string {
	u, _, _ = strings.Cut(u, "|")
	if i := strings.LastIndexByte(u, '/'); i >= 0 {
		return u[i+1:]
	}
	return u
}

// findLibrary matches by exact URL first, else by name; with a version,
// only that version matches.
func findLibrary(hs []libraryHeader, url, name, version string) *libraryHeader {
	var byName *libraryHeader
	for i := range hs {
		h := &hs[i]
		if version != "" && h.version != version {
			continue
		}
		if url != "" && h.url == url {
			return h
		}
		if h.name == name || canonicalName(h.url) == name {
			byName = h
		}
	}
	return byName
}

func (c Content) libraryHeaders() ([]libraryHeader, error) {
	dir := filepath.Join(c.Dir, "libraries")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadContent, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no library files in %s", ErrBadContent, dir)
	}
	sort.Strings(files)
	out := make([]libraryHeader, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadContent, err)
		}
		// gjson reads the four header fields without decoding the
		// (megabytes of) base64 content: loading is dominated by JSON.
		if !gjson.ValidBytes(raw) {
			return nil, fmt.Errorf("%w: %s: malformed JSON", ErrBadContent, f)
		}
		h := gjson.GetManyBytes(raw, "resourceType", "url", "name", "version")
		if rt := h[0].String(); rt != "Library" {
			return nil, fmt.Errorf("%w: %s: resourceType %q, want Library", ErrBadContent, f, rt)
		}
		out = append(out, libraryHeader{file: f, url: h[1].String(), name: h[2].String(), version: h[3].String()})
	}
	return out, nil
}

type elmInclude struct {
	Path, Version string
}

// elmIncludes is what the loader needs of one library's ELM.
type elmIncludes struct {
	Includes   []elmInclude
	ValueSets  []ValueSetRef
	Statements []statement
}

// elmSummary reads the includes, value sets and statement headers of a
// FHIR Library's ELM (the engine decodes the full tree separately).
func elmSummary(raw []byte) (*elmIncludes, error) {
	data := gjson.GetBytes(raw, `content.#(contentType=="application/elm+json").data`)
	if !data.Exists() {
		return nil, errors.New("no application/elm+json content")
	}
	elmJSON, err := base64.StdEncoding.DecodeString(data.String())
	if err != nil {
		return nil, fmt.Errorf("application/elm+json content is not base64: %w", err)
	}
	if !gjson.ValidBytes(elmJSON) {
		return nil, errors.New("malformed ELM JSON")
	}
	lib := gjson.GetBytes(elmJSON, "library")
	inc := &elmIncludes{}
	lib.Get("includes.def").ForEach(func(_, d gjson.Result) bool {
		inc.Includes = append(inc.Includes, elmInclude{Path: d.Get("path").String(), Version: d.Get("version").String()})
		return true
	})
	lib.Get("valueSets.def").ForEach(func(_, d gjson.Result) bool {
		inc.ValueSets = append(inc.ValueSets, ValueSetRef{Name: d.Get("name").String(), ID: d.Get("id").String(), Version: d.Get("version").String()})
		return true
	})
	lib.Get("statements.def").ForEach(func(_, d gjson.Result) bool {
		inc.Statements = append(inc.Statements, statement{name: d.Get("name").String(), function: d.Get("type").String() == "FunctionDef", operands: len(d.Get("operand").Array())})
		return true
	})
	return inc, nil
}

// loadValueSets reads measures/NAME/valuesets.json and any valuesets/*.json.
func (c Content) loadValueSets(name string) (*terminology.Index, error) {
	idx := terminology.NewIndex()
	files, _ := filepath.Glob(filepath.Join(c.Dir, "valuesets", "*.json"))
	sort.Strings(files)
	own := filepath.Join(c.Dir, "measures", name, "valuesets.json")
	if _, err := os.Stat(own); err == nil {
		files = append(files, own)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadContent, err)
		}
		_, err = idx.AddJSON(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadContent, f, err)
		}
	}
	return idx, nil
}
