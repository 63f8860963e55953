package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/store"
)

// Resource is one FHIR resource of a measure package, ready to be written.
type Resource struct {
	Type, ID string
	Body     []byte
}

// ContentResources returns the resources of the named measures (all when
// names is empty) of a content directory in the layout of ../shared/ecqm
// (libraries/, measures/<Name>/Measure.json, measures/<Name>/valuesets.json,
// optional valuesets/*.json): each Measure, the Libraries of its closure
// and its ValueSets, each once. Every measure is loaded first (its library
// closure resolved and its value sets checked), so content that could not
// compile is refused before anything is written.
func ContentResources(ctx context.Context, dir string, names ...string) ([]Resource, error) {
	content := measure.Content{Dir: dir}
	if len(names) == 0 {
		var err error
		if names, err = content.Measures(); err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%w: no measures in %s", measure.ErrBadContent, filepath.Join(dir, "measures"))
		}
	}
	var out []Resource
	seen := map[string]bool{}
	add := func(raw []byte, where string) error {
		h := gjson.GetManyBytes(raw, "resourceType", "id")
		typ, id := h[0].String(), h[1].String()
		if typ == "" || id == "" {
			return fmt.Errorf("%w: %s: resource without resourceType or id", measure.ErrBadContent, where)
		}
		if seen[typ+"/"+id] {
			return nil
		}
		seen[typ+"/"+id] = true
		out = append(out, Resource{Type: typ, ID: id, Body: raw})
		return nil
	}
	for _, name := range names {
		pkg, err := content.Load(ctx, name)
		if err != nil {
			return nil, err
		}
		raw, err := os.ReadFile(pkg.MeasureFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", measure.ErrBadContent, err)
		}
		if err := add(raw, pkg.MeasureFile); err != nil {
			return nil, err
		}
		files := make([]string, 0, len(pkg.LibraryFiles))
		for _, f := range pkg.LibraryFiles {
			files = append(files, f)
		}
		sort.Strings(files)
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", measure.ErrBadContent, err)
			}
			if err := add(raw, f); err != nil {
				return nil, err
			}
		}
		vsFiles, _ := filepath.Glob(filepath.Join(dir, "valuesets", "*.json"))
		sort.Strings(vsFiles)
		if own := filepath.Join(dir, "measures", name, "valuesets.json"); fileExists(own) {
			vsFiles = append(vsFiles, own)
		}
		for _, f := range vsFiles {
			raw, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", measure.ErrBadContent, err)
			}
			if gjson.GetBytes(raw, "resourceType").String() == "ValueSet" {
				if err := add(raw, f); err != nil {
					return nil, err
				}
				continue
			}
			var ferr error
			gjson.GetBytes(raw, "entry.#.resource").ForEach(func(_, r gjson.Result) bool {
				if r.Get("resourceType").String() == "ValueSet" {
					ferr = add([]byte(r.Raw), f)
				}
				return ferr == nil
			})
			if ferr != nil {
				return nil, ferr
			}
		}
	}
	return out, nil
}

func fileExists(f string) bool {
	_, err := os.Stat(f)
	return err == nil
}

// LoadDir writes the named measures of a content directory (see
// ContentResources) into st in one transaction. Resources keep their ids,
// so loading again is idempotent (unchanged resources are not rewritten).
func LoadDir(ctx context.Context, st store.Store, dir string, names ...string) error {
	rs, err := ContentResources(ctx, dir, names...)
	if err != nil {
		return err
	}
	return Write(ctx, st, rs)
}

// Write writes resources (ContentResources) into st in one transaction,
// keeping their ids; unchanged resources are not rewritten.
func Write(ctx context.Context, st store.Store, rs []Resource) error {
	tx := store.Tx{Writes: make([]store.Write, 0, len(rs))}
	for _, r := range rs {
		tx.Writes = append(tx.Writes, store.Write{Op: store.OpPut, Type: r.Type, ID: r.ID, Body: r.Body, SkipUnchanged: true})
	}
	if _, err := st.Commit(ctx, tx); err != nil {
		return fmt.Errorf("catalog: loading measures: %w", err)
	}
	return nil
}

// TransactionBundle returns rs as a FHIR transaction Bundle of PUTs (the
// REST form of LoadDir: `equitas measure load --server`).
func TransactionBundle(rs []Resource) ([]byte, error) {
	type request struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	}
	type entry struct {
		FullURL  string          `json:"fullUrl,omitempty"`
		Resource json.RawMessage `json:"resource"`
		Request  request         `json:"request"`
	}
	b := struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Entry        []entry `json:"entry"`
	}{ResourceType: "Bundle", Type: "transaction"}
	for _, r := range rs {
		b.Entry = append(b.Entry, entry{Resource: r.Body, Request: request{Method: "PUT", URL: r.Type + "/" + r.ID}})
	}
	return json.Marshal(b)
}
