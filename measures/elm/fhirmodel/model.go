// Package fhirmodel describes the FHIR R4 model as the ELM engine needs it:
// each element's FHIR type, list-ness and choice alternatives (generated from
// the google/fhir R4 descriptors), the subtype relations used by CQL Is/As,
// and a small JSON tree (Node) that resources are parsed into once per
// patient evaluation.
package fhirmodel

//go:generate go run ./internal/gen -o r4_types.go

import (
	"strings"
	"sync"
)

// Element is one element of a FHIR type.
type Element struct {
	Type   string // FHIR type name, or "Choice"
	List   bool
	Choice string // for choice elements: "Suffix:type,..."
}

// Type is a FHIR type: a primitive ("dateTime"), complex type ("Period"),
// backbone element ("Encounter.Location") or resource ("Encounter").
type Type struct {
	Name     string
	Base     *Type
	Resource bool
	elements map[string]*Field
}

// Field is a resolved element of a Type.
type Field struct {
	Name    string
	Type    *Type // nil for choice elements
	List    bool
	Choices []Choice
}

// Choice is one alternative of a choice element: JSON key suffix and type.
type Choice struct {
	Suffix string
	Type   *Type
}

// Primitive reports whether t is a FHIR primitive type.
func (t *Type) Primitive() bool {
	return t != nil && t.Name != "" && t.Name[0] >= 'a' && t.Name[0] <= 'z'
}

// Field returns the named element of t or nil.
func (t *Type) Field(name string) *Field {
	if t == nil {
		return nil
	}
	for x := t; x != nil; x = x.Base {
		if f := x.elements[name]; f != nil {
			return f
		}
	}
	return nil
}

// IsA reports whether t is name or derives from it.
func (t *Type) IsA(name string) bool {
	for x := t; x != nil; x = x.Base {
		if x.Name == name {
			return true
		}
	}
	return false
}

// Model is an immutable FHIR model, safe for concurrent use.
type Model struct {
	types map[string]*Type
}

// Type returns the named type (nil if unknown).
func (m *Model) Type(name string) *Type { return m.types[name] }

var r4 = sync.OnceValue(buildR4)

// R4 returns the shared FHIR R4 model.
func R4() *Model { return r4() }

// subtypes of the FHIR specification that the proto descriptors flatten.
var baseOf = map[string]string{
	"Age": "Quantity", "Count": "Quantity", "Distance": "Quantity", "Duration": "Quantity",
	"MoneyQuantity": "Quantity", "SimpleQuantity": "Quantity",
	"code": "string", "id": "string", "markdown": "string",
	"url": "uri", "canonical": "uri", "uuid": "uri", "oid": "uri",
	"positiveInt": "integer", "unsignedInt": "integer",
	"DomainResource": "Resource",
}

func buildR4() *Model {
	m := &Model{types: map[string]*Type{}}
	get := func(name string) *Type {
		t := m.types[name]
		if t == nil {
			t = &Type{Name: name, elements: map[string]*Field{}}
			m.types[name] = t
		}
		return t
	}
	for _, n := range []string{"boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary",
		"instant", "date", "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt", "positiveInt", "uuid", "xhtml",
		"Element", "BackboneElement", "Resource", "DomainResource", "Quantity", "SimpleQuantity", "MoneyQuantity"} {
		get(n)
	}
	for key, e := range r4Elements {
		i := strings.LastIndexByte(key, '.')
		owner, name := key[:i], key[i+1:]
		t := get(owner)
		f := &Field{Name: name, List: e.List}
		if e.Type == "Choice" {
			for _, c := range strings.Split(e.Choice, ",") {
				suf, typ, _ := strings.Cut(c, ":")
				f.Choices = append(f.Choices, Choice{Suffix: suf, Type: get(typ)})
			}
		} else {
			f.Type = get(e.Type)
		}
		t.elements[name] = f
	}
	// Primitives expose id, extension and value.
	ext := get("Extension")
	for name, t := range m.types {
		if t.Primitive() {
			t.elements["id"] = &Field{Name: "id", Type: get("string")}
			t.elements["extension"] = &Field{Name: "extension", Type: ext, List: true}
		}
		if b, ok := baseOf[name]; ok {
			t.Base = get(b)
			continue
		}
		switch {
		case t.elements["implicitRules"] != nil && name != "Resource" && name != "DomainResource":
			t.Resource = true
			if t.elements["text"] != nil {
				t.Base = get("DomainResource")
			} else {
				t.Base = get("Resource")
			}
		case strings.Contains(name, "."):
			t.Base = get("BackboneElement")
		case name != "Element" && !t.Primitive() && name != "Resource":
			t.Base = get("Element")
		}
	}
	get("BackboneElement").Base = get("Element")
	get("DomainResource").Base = get("Resource")
	return m
}
