package measureapi

import (
	"errors"
	"testing"

	"github.com/equitas/equitas/fhir/outcome"
)

// FuzzParseParameters: any body yields parameters or a 4xx HTTPError,
// never a panic, every parsed parameter has a name, and reading one as
// single-valued fails only with a 400.
func FuzzParseParameters(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Parameters","parameter":[{"name":"periodStart","valueDate":"2025"}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"subject","valueReference":{"reference":"Patient/1"}}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"measureReport","resource":{"resourceType":"MeasureReport"}}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"x","part":[{"name":"y","valueString":"z"}]}]}`,
		`{"resourceType":"Parameters","parameter":[{"valueString":"x"}]}`,
		`{"resourceType":"Patient"}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out := params{}
		err := parseParameters(body, out)
		if err != nil {
			var he *outcome.HTTPError
			if !errors.As(err, &he) || he.Status < 400 || he.Status >= 500 {
				t.Fatalf("error %v is not a 4xx HTTPError", err)
			}
			return
		}
		for name, vs := range out {
			if name == "" || len(vs) == 0 {
				t.Fatalf("parameter %q with %d values", name, len(vs))
			}
			if _, err := out.one(name); err != nil {
				var he *outcome.HTTPError
				if !errors.As(err, &he) || he.Status != 400 {
					t.Fatalf("one(%q): %v is not a 400 HTTPError", name, err)
				}
			}
		}
	})
}
