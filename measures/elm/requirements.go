package elm

import (
	"sort"
	"strings"
)

// Retrieve describes one Retrieve of a library: the data a measure needs,
// as $data-requirements lists it.
type Retrieve struct {
	// Library is the name of the library holding the retrieve.
	Library string
	// DataType is the FHIR resource type (the model namespace dropped).
	DataType string
	// TemplateID is the profile the retrieve asks for ("" for none).
	TemplateID   string
	CodeProperty string
	// ValueSet is the canonical of the value set the codes must be in.
	ValueSet string
	// Codes are the direct-reference codes the codes must match.
	Codes        []RetrieveCode
	DateProperty string
}

// RetrieveCode is one direct-reference code of a retrieve.
type RetrieveCode struct {
	System, Code, Display string
}

// Key identifies a retrieve's data requirement (equal keys ask for the
// same data).
func (r Retrieve) Key() string {
	var b strings.Builder
	b.WriteString(r.DataType + "|" + r.TemplateID + "|" + r.CodeProperty + "|" + r.ValueSet + "|" + r.DateProperty)
	for _, c := range r.Codes {
		b.WriteString("|" + c.System + "#" + c.Code)
	}
	return b.String()
}

// Retrieves lists the distinct retrieves of libs (a measure's library
// closure), in a stable order. Value-set and code references, also those
// to included libraries, are resolved to canonicals and codes.
func Retrieves(libs []*Library) []Retrieve {
	byName := map[string]*Library{}
	for _, l := range libs {
		byName[l.ID.Name] = l
	}
	seen := map[string]bool{}
	var out []Retrieve
	for _, l := range libs {
		var walk func(v any)
		walk = func(v any) {
			switch n := v.(type) {
			case map[string]any:
				if t, _ := n["type"].(string); t == "Retrieve" {
					r := retrieveOf(l, byName, n)
					if k := r.Key(); !seen[k] {
						seen[k] = true
						out = append(out, r)
					}
				}
				for _, c := range n {
					walk(c)
				}
			case []any:
				for _, c := range n {
					walk(c)
				}
			}
		}
		if st, ok := l.root["statements"]; ok {
			walk(st)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

func retrieveOf(l *Library, byName map[string]*Library, n map[string]any) Retrieve {
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	dt := str(n, "dataType")
	if i := strings.LastIndexByte(dt, '}'); i >= 0 {
		dt = dt[i+1:]
	}
	r := Retrieve{Library: l.ID.Name, DataType: dt, TemplateID: str(n, "templateId"), CodeProperty: str(n, "codeProperty"), DateProperty: str(n, "dateProperty")}
	codes, _ := n["codes"].(map[string]any)
	var visit func(c map[string]any)
	visit = func(c map[string]any) {
		if c == nil {
			return
		}
		switch str(c, "type") {
		case "ValueSetRef":
			if lib := target(l, byName, str(c, "libraryName")); lib != nil {
				for _, d := range defs(lib.root, "valueSets") {
					if str(d, "name") == str(c, "name") {
						r.ValueSet = str(d, "id")
					}
				}
			}
		case "CodeRef":
			if lib := target(l, byName, str(c, "libraryName")); lib != nil {
				r.Codes = append(r.Codes, codeOf(lib, str(c, "name")))
			}
		case "Code":
			sys, _ := c["system"].(map[string]any)
			code := RetrieveCode{Code: str(c, "code"), Display: str(c, "display")}
			if lib := target(l, byName, str(sys, "libraryName")); lib != nil {
				code.System = systemOf(lib, str(sys, "name"))
			}
			r.Codes = append(r.Codes, code)
		case "ToList", "ToConcept", "As":
			op, _ := c["operand"].(map[string]any)
			visit(op)
		case "List":
			els, _ := c["element"].([]any)
			for _, e := range els {
				em, _ := e.(map[string]any)
				visit(em)
			}
		}
	}
	visit(codes)
	return r
}

// target is the library a reference with the given alias points to (the
// library itself when alias is empty).
func target(l *Library, byName map[string]*Library, alias string) *Library {
	if alias == "" {
		return l
	}
	for _, inc := range defs(l.root, "includes") {
		if a, _ := inc["localIdentifier"].(string); a == alias {
			path, _ := inc["path"].(string)
			if i := strings.LastIndexByte(path, '/'); i >= 0 {
				path = path[i+1:]
			}
			return byName[path]
		}
	}
	return nil
}

func codeOf(l *Library, name string) RetrieveCode {
	for _, d := range defs(l.root, "codes") {
		if n, _ := d["name"].(string); n != name {
			continue
		}
		c := RetrieveCode{}
		c.Code, _ = d["id"].(string)
		c.Display, _ = d["display"].(string)
		if cs, ok := d["codeSystem"].(map[string]any); ok {
			csName, _ := cs["name"].(string)
			c.System = systemOf(l, csName)
		}
		return c
	}
	return RetrieveCode{Code: name}
}

func systemOf(l *Library, name string) string {
	for _, d := range defs(l.root, "codeSystems") {
		if n, _ := d["name"].(string); n == name {
			id, _ := d["id"].(string)
			return id
		}
	}
	return ""
}
