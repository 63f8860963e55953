package subscription_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/subscription"
)

// FuzzParse: any body is either a 400 OperationOutcome error or a
// Subscription that keeps the server's rules (topic criteria, a rest-hook
// http(s) endpoint, a known payload content, one-line headers).
func FuzzParse(f *testing.F) {
	f.Add([]byte(subscriptionJSON("http://127.0.0.1:9/hook", "id-only")))
	f.Add([]byte(subscriptionJSON("https://x.example/h?a=b", "full-resource", "Encounter?event=admit,discharge", "Encounter?patient=Patient/1&group=g")))
	f.Add([]byte(subscriptionJSON("http://h/", "empty", "Encounter?organization=1|2")))
	f.Add([]byte(`{"resourceType":"Subscription","status":"active","criteria":"` + subscription.TopicURL + `","channel":{"type":"rest-hook","endpoint":"http://a/","header":["A: b"]}}`))
	f.Add([]byte(`{"resourceType":"Subscription"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := subscription.Parse(body)
		if err != nil {
			var he *outcome.HTTPError
			if !errors.As(err, &he) || he.Status != 400 {
				t.Fatalf("error is not a 400 HTTPError: %v", err)
			}
			return
		}
		switch s.Content {
		case subscription.ContentEmpty, subscription.ContentIDOnly, subscription.ContentFullResource:
		default:
			t.Fatalf("content %q accepted", s.Content)
		}
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("endpoint %q accepted", s.Endpoint)
		}
		for _, h := range s.Headers {
			for _, c := range h[0] + h[1] {
				if c == '\r' || c == '\n' {
					t.Fatalf("header %q accepted", h)
				}
			}
		}
		for k := range s.Filter.Kinds {
			if !s.Filter.Matches(k, "") && s.Filter.Patients == nil {
				t.Fatalf("kind %q in filter but not matched", k)
			}
		}
	})
}
