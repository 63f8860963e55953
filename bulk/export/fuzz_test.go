package export

import (
	"net/url"
	"testing"
)

// FuzzParse feeds arbitrary POST bodies and query strings through the
// kick-off parsing: it must return params or a *ParamError/plain error,
// never panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient"}]}`), "_since=2024-01-01T00:00:00Z&_typeFilter=Observation%3Fstatus%3Dfinal")
	f.Add([]byte(`{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/1"}}]}`), "_elements=Patient.gender")
	f.Add([]byte(`{}`), "_outputFormat=ndjson&includeAssociatedData=LatestProvenanceResources")
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		vals, err := ParametersBody(body)
		if err != nil {
			vals = url.Values{}
		}
		q, err := url.ParseQuery(query)
		if err == nil {
			for k, vs := range q {
				vals[k] = append(vals[k], vs...)
			}
		}
		for _, level := range []Level{System, Patient, Group} {
			for _, lenient := range []bool{false, true} {
				p, err := Parse(Kickoff{Level: level, Values: vals, Lenient: lenient, IsPOST: true})
				if err == nil && p == nil {
					t.Fatal("nil params without error")
				}
			}
		}
	})
}
