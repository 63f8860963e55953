package adt

import "encoding/json"

// The FHIR R4 elements the mapper produces. They are local, small and
// marshalled with omitempty, so an absent v2 field never yields an empty
// string, object or array (which FHIR JSON forbids).

type coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

type codeableConcept struct {
	Coding []coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

func (c *codeableConcept) empty() bool { return c == nil || (len(c.Coding) == 0 && c.Text == "") }

type identifier struct {
	Use    string           `json:"use,omitempty"`
	Type   *codeableConcept `json:"type,omitempty"`
	System string           `json:"system,omitempty"`
	Value  string           `json:"value,omitempty"`
}

type reference struct {
	Reference  string      `json:"reference,omitempty"`
	Type       string      `json:"type,omitempty"`
	Identifier *identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

type period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

type humanName struct {
	Use    string   `json:"use,omitempty"`
	Text   string   `json:"text,omitempty"`
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
	Suffix []string `json:"suffix,omitempty"`
}

type address struct {
	Use        string   `json:"use,omitempty"`
	Type       string   `json:"type,omitempty"`
	Line       []string `json:"line,omitempty"`
	City       string   `json:"city,omitempty"`
	District   string   `json:"district,omitempty"`
	State      string   `json:"state,omitempty"`
	PostalCode string   `json:"postalCode,omitempty"`
	Country    string   `json:"country,omitempty"`
}

type contactPoint struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
	Use    string `json:"use,omitempty"`
}

type extension struct {
	URL         string      `json:"url"`
	Extension   []extension `json:"extension,omitempty"`
	ValueCoding *coding     `json:"valueCoding,omitempty"`
	ValueString string      `json:"valueString,omitempty"`
}

type communication struct {
	Language  codeableConcept `json:"language"`
	Preferred bool            `json:"preferred,omitempty"`
}

type link struct {
	Other reference `json:"other"`
	Type  string    `json:"type"`
}

// raw marshals v; the mapper's types cannot fail to marshal.
func raw(v any) []byte {
	if b, ok := encode(make([]byte, 0, 128), v); ok {
		return b
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("adt: marshal " + err.Error()) // unreachable: plain structs of strings
	}
	return b
}
