package elm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalidELM is returned (wrapped) for ELM that cannot be loaded.
var ErrInvalidELM = errors.New("elm: invalid ELM")

// Library is a parsed ELM library. Its tree is kept as decoded JSON and
// compiled by Compile.
type Library struct {
	ID LibraryIdentifier
	// URL is the library's canonical URL when it was parsed from a FHIR Library.
	URL  string
	root map[string]any
}

type node = map[string]any

// ParseLibrary parses ELM JSON ({"library": {...}}) or a FHIR Library
// resource whose content[] carries application/elm+json (base64).
func ParseLibrary(data []byte) (*Library, error) {
	var top map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidELM, err)
	}
	url := ""
	if rt, _ := top["resourceType"].(string); rt == "Library" {
		url, _ = top["url"].(string)
		elmData, err := fhirLibraryELM(top)
		if err != nil {
			return nil, err
		}
		top = nil
		dec := json.NewDecoder(bytes.NewReader(elmData))
		dec.UseNumber()
		if err := dec.Decode(&top); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidELM, err)
		}
	}
	lib, ok := top["library"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: no library object", ErrInvalidELM)
	}
	ident, _ := lib["identifier"].(map[string]any)
	name, _ := ident["id"].(string)
	if name == "" {
		return nil, fmt.Errorf("%w: library has no identifier.id", ErrInvalidELM)
	}
	version, _ := ident["version"].(string)
	if err := checkShape(lib); err != nil {
		return nil, fmt.Errorf("%w: library %s: %w", ErrInvalidELM, name, err)
	}
	return &Library{ID: LibraryIdentifier{Name: name, Version: version}, URL: url, root: lib}, nil
}

func fhirLibraryELM(res map[string]any) ([]byte, error) {
	content, _ := res["content"].([]any)
	for _, c := range content {
		cm, _ := c.(map[string]any)
		if ct, _ := cm["contentType"].(string); ct != "application/elm+json" {
			continue
		}
		s, _ := cm["data"].(string)
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: content data: %w", ErrInvalidELM, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: FHIR Library has no application/elm+json content", ErrInvalidELM)
}

// checkShape verifies the top-level sections have the expected JSON shapes
// so that compilation can index them without further checks.
func checkShape(lib map[string]any) error {
	for _, sec := range []string{"usings", "includes", "parameters", "codeSystems", "valueSets", "codes", "concepts", "statements", "contexts"} {
		v, ok := lib[sec]
		if !ok || v == nil {
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is not an object", sec)
		}
		if d, ok := m["def"]; ok && d != nil {
			arr, ok := d.([]any)
			if !ok {
				return fmt.Errorf("%s.def is not an array", sec)
			}
			for i, e := range arr {
				if _, ok := e.(map[string]any); !ok {
					return fmt.Errorf("%s.def[%d] is not an object", sec, i)
				}
			}
		}
	}
	if anns, ok := lib["annotation"].([]any); ok {
		for _, a := range anns {
			am, _ := a.(map[string]any)
			if t, _ := am["type"].(string); t == "CqlToElmError" {
				if sev, _ := am["errorSeverity"].(string); sev == "error" {
					msg, _ := am["message"].(string)
					return fmt.Errorf("translator error: %s", msg)
				}
			}
		}
	}
	return nil
}

func defs(lib map[string]any, sec string) []node {
	m, _ := lib[sec].(map[string]any)
	arr, _ := m["def"].([]any)
	out := make([]node, 0, len(arr))
	for _, e := range arr {
		out = append(out, e.(map[string]any))
	}
	return out
}
