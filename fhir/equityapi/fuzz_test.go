package equityapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/equitas/equitas/fhir/outcome"
)

// FuzzParametersBody: any POSTed body yields parameters or a 4xx
// outcome error, never a panic or another error.
func FuzzParametersBody(f *testing.F) {
	f.Add(`{"resourceType":"Parameters","parameter":[{"name":"measure","valueString":"m"},{"name":"equityWeight","valueDecimal":0.3}]}`)
	f.Add(`{"resourceType":"Parameters","parameter":[{"name":"subject","valueReference":{"reference":"Group/1"}},{"name":"sviTable","valueAttachment":{"data":"YSwwLjU="}}]}`)
	f.Add(`{"resourceType":"Parameters","parameter":[{"name":"x","part":[]}]}`)
	f.Add(`{"resourceType":"Parameters","parameter":[{"name":"x","valueAttachment":{"data":"%%"}}]}`)
	f.Add(`{"resourceType":"Parameters"`)
	h := New(nil, nil, Options{MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/fhir/$equity-report", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/fhir+json")
		vals, err := h.values(httptest.NewRecorder(), r)
		if err == nil {
			for k := range vals {
				if k == "" {
					t.Fatal("a parameter without a name was accepted")
				}
			}
			return
		}
		var he *outcome.HTTPError
		if !errors.As(err, &he) {
			t.Fatalf("not an HTTP error: %v", err)
		}
	})
}
