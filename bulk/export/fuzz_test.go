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

// FuzzParseDaVinci: $davinci-data-export parsing never panics, and what it
// accepts always holds the ATR minimum types and requires a token.
func FuzzParseDaVinci(f *testing.F) {
	f.Add("exportType=hl7.fhir.us.davinci-atr&_type=Group,Patient,Coverage,Practitioner")
	f.Add("exportType=hl7.fhir.us.davinci-atr&resourceTypes=GRoup,patient,COVERAGE&patient=Patient/1,Organization/2")
	f.Add("exportType=hl7.fhir.us.davinci-atr&_since=2024-01-01T00:00:00Z&_until=2025-01-01T00:00:00Z")
	f.Fuzz(func(t *testing.T, query string) {
		vals, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		for _, lenient := range []bool{false, true} {
			p, err := ParseDaVinci(Kickoff{Level: Group, GroupID: "g", Values: vals, Lenient: lenient})
			if err != nil {
				continue
			}
			if !p.RequiresAccessToken || p.ExportType != ATRExportType {
				t.Fatalf("accepted without the ATR settings: %+v", p)
			}
			for _, typ := range atrMinimum {
				found := false
				for _, got := range p.Types {
					found = found || got == typ
				}
				if !found && !lenient {
					t.Fatalf("accepted %q without %s: %v", query, typ, p.Types)
				}
			}
		}
	})
}
