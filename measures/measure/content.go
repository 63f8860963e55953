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
	pkg := &Package{Definition: def, MeasureFile: file, LibraryFiles: map[string]string{}}
	headers, err := c.libraryHeaders()
	if err != nil {
		return nil, err
	}
	rootURL, rootVersion, _ := strings.Cut(def.Library, "|")
	rootHdr := findLibrary(headers, rootURL, canonicalName(rootURL), rootVersion)
	if rootHdr == nil {
		return nil, fmt.Errorf("%w: %s: Measure.library %s not found among %s", ErrBadContent, file, def.Library, filepath.Join(c.Dir, "libraries", "*.json"))
	}
	// Walk the ELM includes from the root; each include names a library by
	// path (namespace/Name) and version.
	queue := []*libraryHeader{rootHdr}
	loaded := map[string]bool{}
	var valueSets []elmValueSet
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cur := queue[0]
		queue = queue[1:]
		if loaded[cur.file] {
			continue
		}
		loaded[cur.file] = true
		raw, err := os.ReadFile(cur.file)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadContent, err)
		}
		lib, err := elm.ParseLibrary(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadContent, cur.file, err)
		}
		inc, err := elmSummary(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadContent, cur.file, err)
		}
		if pkg.Root == nil {
			pkg.Root = lib
			pkg.statements = inc.Statements
		}
		pkg.Libraries = append(pkg.Libraries, lib)
		pkg.LibraryFiles[lib.ID.String()] = cur.file
		for _, vs := range inc.ValueSets {
			vs.usedBy = lib.ID.Name
			valueSets = append(valueSets, vs)
		}
		for _, in := range inc.Includes {
			name := canonicalName(in.Path)
			h := findLibrary(headers, "", name, in.Version)
			if h == nil {
				return nil, fmt.Errorf("%w: library %s version %s (included by %s in %s) not found among %s",
					ErrBadContent, name, orAny(in.Version), lib.ID, cur.file, filepath.Join(c.Dir, "libraries", "*.json"))
			}
			queue = append(queue, h)
		}
	}
	pkg.Terminology, err = c.loadValueSets(name)
	if err != nil {
		return nil, err
	}
	for _, vs := range valueSets {
		if _, err := pkg.Terminology.Lookup(vs.ID, vs.Version); err != nil {
			return nil, fmt.Errorf("%w: value set %q (%s, used by library %s) has no expansion in %s",
				ErrBadContent, vs.Name, vs.ID, vs.usedBy, filepath.Join(c.Dir, "measures", name, "valuesets.json"))
		}
	}
	return pkg, nil
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

type elmValueSet struct {
	Name, ID, Version string
	usedBy            string
}

type elmInclude struct {
	Path, Version string
}

// elmIncludes is what the loader needs of one library's ELM.
type elmIncludes struct {
	Includes   []elmInclude
	ValueSets  []elmValueSet
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
		inc.ValueSets = append(inc.ValueSets, elmValueSet{Name: d.Get("name").String(), ID: d.Get("id").String(), Version: d.Get("version").String()})
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
