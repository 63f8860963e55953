package ingest_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/equitas/equitas/bulk/ingest"
)

// FuzzLoad feeds arbitrary bytes to the loader as an NDJSON or a JSON
// source: it must never panic or fail as a whole, and every resource it
// reads is either loaded or reported.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(goodPatient+"\n"+goodObs+"\n"), false)
	f.Add([]byte("{\"resourceType\":\"Patient\",\"id\":\"x\"\r\n\n{"), false)
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient"}},`+
		`{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:a"}}},{"request":{"method":"DELETE","url":"Patient/q"}}]}`), true)
	f.Add([]byte(`{"resourceType":"Bundle","type":"collection","entry":{}}`), true)
	f.Add([]byte(goodPatient), true)
	st := openStore(f)
	l := newLoader(f, st, ingest.Options{BatchSize: 7, MaxLineBytes: 4096})
	f.Fuzz(func(t *testing.T, data []byte, bundle bool) {
		format := ingest.NDJSON
		if bundle {
			format = ingest.JSON
		}
		src := ingest.Source{Name: "fuzz", Format: format, Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}}
		sum, err := l.Load(context.Background(), src)
		if err != nil {
			t.Fatalf("load failed as a whole: %v", err)
		}
		if sum.Loaded()+sum.Failed != sum.Read {
			t.Fatalf("read %d, loaded %d, failed %d", sum.Read, sum.Loaded(), sum.Failed)
		}
	})
}
