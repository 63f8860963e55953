package rest_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/store/badgerstore"
)

// FuzzHandler sends arbitrary requests through the whole server on a real
// store: whatever the input, the answer is never a 5xx, every error is an
// OperationOutcome, and the recover middleware is never reached.
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		method uint8
		target string
		ctype  uint8
		body   string
	}{
		{0, "/fhir/Patient?family=a&_count=2", 0, ""},
		{1, "/fhir/Patient", 0, `{"resourceType":"Patient","name":[{"family":"F"}]}`},
		{2, "/fhir/Patient/p1", 0, `{"resourceType":"Patient","id":"p1"}`},
		{3, "/fhir/Patient/p1", 0, ""},
		{1, "/fhir", 0, `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"request":{"method":"GET","url":"Patient?_id=x"}}]}`},
		{1, "/fhir", 0, `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"DELETE","url":"Patient?identifier=a|b"}}]}`},
		{1, "/fhir/Patient/_search", 1, "family=x&_include=Patient:organization"},
		{0, "/fhir/Patient/p1/_history?_since=2020-01-01&_count=1", 0, ""},
		{0, "/fhir/_history?_offset=3&_until=2030-01-01T00:00:00Z", 0, ""},
		{0, "/fhir/metadata", 0, ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.ctype, []byte(s.body))
	}
	st, err := badgerstore.Open(context.Background(), f.TempDir(), badgerstore.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	srv, err := rest.New(rest.Config{Store: st, MaxBodyBytes: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodPatch}
	ctypes := []string{"application/fhir+json", "application/x-www-form-urlencoded", "", "text/plain"}
	f.Fuzz(func(t *testing.T, m uint8, target string, ct uint8, body []byte) {
		u, err := url.ParseRequestURI(target)
		if err != nil || u.Host != "" || u.Scheme != "" {
			return
		}
		req, err := http.NewRequest(methods[int(m)%len(methods)], "http://equitas.test"+u.RequestURI(), bytes.NewReader(body))
		if err != nil {
			return
		}
		req.RemoteAddr = "127.0.0.1:1234"
		if c := ctypes[int(ct)%len(ctypes)]; c != "" {
			req.Header.Set("Content-Type", c)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s -> %d %s", req.Method, target, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 && req.Method != http.MethodHead && gjson.GetBytes(rec.Body.Bytes(), "resourceType").String() != "OperationOutcome" {
			t.Fatalf("%s %s -> %d without OperationOutcome: %s", req.Method, target, rec.Code, rec.Body.String())
		}
		if srv.Panics() != 0 {
			t.Fatalf("%s %s reached the recover middleware", req.Method, target)
		}
	})
}
