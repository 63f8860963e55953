package bundle

import (
	"bytes"
	"encoding/json"
	"slices"
)

// Resource is a FHIR resource the server builds itself (a report, a
// notification) as a map of its elements. It marshals
// resourceType and id first, as FHIR JSON is conventionally written and as
// streaming readers expect; the other elements follow in name order.
type Resource map[string]any

// MarshalJSON implements json.Marshaler.
func (r Resource) MarshalJSON() ([]byte, error) {
	keys := make([]string, 0, len(r))
	for k := range r {
		if k != "resourceType" && k != "id" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if _, ok := r["id"]; ok {
		keys = append([]string{"id"}, keys...)
	}
	if _, ok := r["resourceType"]; ok {
		keys = append([]string{"resourceType"}, keys...)
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(r[k])
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
