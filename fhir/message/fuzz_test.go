package message_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/equitas/equitas/fhir/message"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store/badgerstore"
)

// FuzzProcess: any body is either applied (answered with a JSON response
// Bundle) or refused with a 4xx OperationOutcome error; never a panic or
// an internal error.
func FuzzProcess(f *testing.F) {
	admit, err := os.ReadFile("testdata/admit.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(admit)
	f.Add([]byte(`{"resourceType":"Parameters","parameter":[{"name":"content","resource":{"resourceType":"Bundle","type":"message"}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","id":"b","type":"message","timestamp":"2026-01-01T00:00:00Z","entry":[{"resource":{"resourceType":"MessageHeader","id":"m","eventCoding":{"system":"http://terminology.hl7.org/CodeSystem/v2-0003","code":"A08"},"source":{"endpoint":"urn:x"},"focus":[{"reference":"urn:uuid:e"}]}},{"fullUrl":"urn:uuid:e","resource":{"resourceType":"Encounter","status":"unknown","class":{"code":"IMP"},"subject":{"reference":"urn:uuid:p"}}},{"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient"}}]}`))
	st, err := badgerstore.Open(context.Background(), f.TempDir(), badgerstore.Options{NoSync: true, MemTableSize: 16 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	v, err := validate.New()
	if err != nil {
		f.Fatal(err)
	}
	p := message.New(st, v, message.Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := p.Process(context.Background(), body, base)
		if err != nil {
			var he *outcome.HTTPError
			if !errors.As(err, &he) || he.Status < 400 || he.Status > 499 {
				t.Fatalf("want a 4xx *outcome.HTTPError, got %v", err)
			}
			return
		}
		if !json.Valid(res.Response) {
			t.Fatalf("response is not JSON: %s", res.Response)
		}
	})
}
