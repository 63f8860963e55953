package validate

import (
	"errors"
	"net/http"
	"testing"

	"github.com/equitas/equitas/fhir/outcome"
)

// FuzzResource checks that any input either validates or fails with a 400
// HTTPError carrying at least one issue: never a panic, never another error.
func FuzzResource(f *testing.F) {
	for _, s := range []string{
		patient, observation, `{}`, `[]`, `null`, `{"resourceType":"Patient","name":[{}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"a","resource":{"resourceType":"Patient","gender":"F"}}]}`,
		`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"}}]}`,
		`{"resourceType":"Patient","name":[{"family":"\u0020"}]}`,
	} {
		f.Add([]byte(s))
	}
	v, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		typ, _, err := v.Resource(body)
		if err == nil {
			if typ == "" {
				t.Fatalf("accepted a body without resourceType: %q", body)
			}
			return
		}
		var he *outcome.HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusBadRequest || len(he.Issues) == 0 {
			t.Fatalf("unexpected error %T %v for %q", err, err, body)
		}
	})
}
