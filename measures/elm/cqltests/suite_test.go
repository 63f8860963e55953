package cqltests

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// manifest is testdata/manifest.json as written by translator/translate.mjs.
type manifest struct {
	Source     string   `json:"source"`
	Translator string   `json:"translator"`
	Families   []family `json:"families"`
}

type family struct {
	Family  string `json:"family"`
	Library string `json:"library"`
	ELM     string `json:"elm"`
	// Supplement marks Equitas's own tests (translator/supplement), which are
	// counted apart from the HL7 suite.
	Supplement bool        `json:"supplement"`
	Tests      []suiteTest `json:"tests"`
}

// suiteTest is one test of the suite. Define and ExpectedDefine name the ELM
// definitions of the expression and of the expected output; they are empty
// when the translator rejected the CQL (see the *TranslationErrors fields).
type suiteTest struct {
	ID                        string   `json:"id"`
	Group                     string   `json:"group"`
	Name                      string   `json:"name"`
	Expression                string   `json:"expression"`
	Outputs                   []string `json:"outputs"`
	Invalid                   string   `json:"invalid"`
	Capabilities              []string `json:"capabilities"`
	Define                    string   `json:"define"`
	ExpectedDefine            string   `json:"expectedDefine"`
	TranslationErrors         []string `json:"translationErrors"`
	ExpectedTranslationErrors []string `json:"expectedTranslationErrors"`
}

// key is the test's stable name in reports and the baseline.
func (t suiteTest) key(fam string) string { return fam + "/" + t.ID }

// expectsError reports whether the suite marks the expression invalid: it
// must fail to translate, to compile or to evaluate.
func (t suiteTest) expectsError() bool { return t.Invalid != "" }

func loadManifest(dir string) (*manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	return &m, nil
}

// familyLibrary is one family's translated ELM library, kept as raw JSON so
// that a library per test can be cut from it.
type familyLibrary struct {
	header map[string]json.RawMessage // every library member except statements
	defs   map[string]json.RawMessage // ExpressionDefs by name
}

func loadFamilyLibrary(path string) (*familyLibrary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var top struct {
		Library map[string]json.RawMessage `json:"library"`
	}
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var stmts struct {
		Def []json.RawMessage `json:"def"`
	}
	if err := json.Unmarshal(top.Library["statements"], &stmts); err != nil {
		return nil, fmt.Errorf("%s: statements: %w", path, err)
	}
	lib := &familyLibrary{header: top.Library, defs: make(map[string]json.RawMessage, len(stmts.Def))}
	delete(lib.header, "statements")
	for _, d := range stmts.Def {
		var named struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(d, &named); err != nil {
			return nil, fmt.Errorf("%s: def: %w", path, err)
		}
		lib.defs[named.Name] = d
	}
	return lib, nil
}

// testLibrary returns ELM JSON of a library holding only the named defines,
// so that an operator the engine cannot compile fails only the tests using it.
func (l *familyLibrary) testLibrary(name string, defines ...string) ([]byte, error) {
	lib := make(map[string]any, len(l.header)+1)
	for k, v := range l.header {
		lib[k] = v
	}
	lib["identifier"] = map[string]string{"id": name, "version": "1.0.0"}
	defs := make([]json.RawMessage, 0, len(defines))
	for _, d := range defines {
		if d == "" {
			continue
		}
		raw, ok := l.defs[d]
		if !ok {
			return nil, fmt.Errorf("define %q missing from the family library", d)
		}
		defs = append(defs, raw)
	}
	lib["statements"] = map[string]any{"def": defs}
	return json.Marshal(map[string]any{"library": lib})
}

// readBaseline returns the test keys recorded as passing.
func readBaseline(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	set := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[line] = true
	}
	return set, sc.Err()
}

func writeBaseline(path string, passing []string) error {
	sort.Strings(passing)
	var b strings.Builder
	b.WriteString("# Tests of the CQL specification suite the ELM engine passes.\n")
	b.WriteString("# Regenerate: go test ./measures/elm/cqltests -run TestSpecSuite -update-baseline\n")
	for _, k := range passing {
		b.WriteString(k)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// reference holds the tests the reference engine does not pass, as recorded
// by translator/reference.mjs; tests absent from it pass there.
type reference map[string]struct {
	Status string `json:"status"`
	Got    string `json:"got"`
}

func loadReference(path string) (reference, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return reference{}, nil
	}
	if err != nil {
		return nil, err
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// describe says what the reference engine did with a test this engine does
// not pass ("" for passing or unrun tests).
func (r reference) describe(o outcome) string {
	switch o.Status {
	case statusPass, statusUntranslate, statusRejected:
		return ""
	}
	e, ok := r[o.Family+"/"+o.Test]
	if !ok {
		return "reference engine passes"
	}
	return fmt.Sprintf("reference engine also fails (%s: %s)", e.Status, e.Got)
}
