package rest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serveLatency runs req through the handler b.N times and reports p50 and
// p99 latency from the sorted samples, plus throughput.
func serveLatency(b *testing.B, e *env, method, target, body string, want int) {
	b.Helper()
	samples := make([]time.Duration, 0, 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var rd *strings.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		var req *http.Request
		if rd != nil {
			req = httptest.NewRequest(method, target, rd)
			req.Header.Set("Content-Type", "application/fhir+json")
		} else {
			req = httptest.NewRequest(method, target, nil)
		}
		rec := httptest.NewRecorder()
		start := time.Now()
		e.srv.ServeHTTP(rec, req)
		samples = append(samples, time.Since(start))
		if rec.Code != want {
			b.Fatalf("%s %s: %d %s", method, target, rec.Code, rec.Body.String())
		}
	}
	b.StopTimer()
	slices.Sort(samples)
	pct := func(p float64) float64 {
		return float64(samples[int(float64(len(samples)-1)*p)].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(len(samples))/b.Elapsed().Seconds(), "req/s")
}

func seed(b *testing.B, e *env, n int) []string {
	b.Helper()
	ids := make([]string, 0, n)
	for i := range n {
		p := patient("Bench"+fmt.Sprint(i%10), fmt.Sprintf("G%d", i))
		p["birthDate"] = fmt.Sprintf("19%02d-01-01", i%100)
		r := e.do(http.MethodPost, "Patient", p, "Prefer", "return=minimal")
		require.Equal(b, http.StatusCreated, r.Status)
		loc := r.Header.Get("Location")
		ids = append(ids, strings.Split(strings.TrimPrefix(loc, e.base+"/Patient/"), "/")[0])
	}
	return ids
}

func BenchmarkRead(b *testing.B) {
	e := newEnv(b)
	ids := seed(b, e, 200)
	serveLatency(b, e, http.MethodGet, "/fhir/Patient/"+ids[len(ids)/2], "", http.StatusOK)
}

func BenchmarkSearch(b *testing.B) {
	e := newEnv(b)
	seed(b, e, 2000)
	serveLatency(b, e, http.MethodGet, "/fhir/Patient?family=Bench3&_count=20", "", http.StatusOK)
}

func BenchmarkCreate(b *testing.B) {
	e := newEnv(b)
	serveLatency(b, e, http.MethodPost, "/fhir/Patient",
		`{"resourceType":"Patient","name":[{"family":"Create","given":["A"]}],"gender":"female","birthDate":"1970-01-01"}`, http.StatusCreated)
}

// BenchmarkTransaction posts 100-entry transactions (Patients with an
// Observation each, linked by urn:uuid) and reports resources written/s.
func BenchmarkTransaction(b *testing.B) {
	e := newEnv(b)
	var sb strings.Builder
	sb.WriteString(`{"resourceType":"Bundle","type":"transaction","entry":[`)
	for i := range 50 {
		if i > 0 {
			sb.WriteString(",")
		}
		urn := fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", i)
		fmt.Fprintf(&sb, `{"fullUrl":%q,"resource":{"resourceType":"Patient","name":[{"family":"Tx%d"}],"gender":"male"},"request":{"method":"POST","url":"Patient"}},`, urn, i)
		fmt.Fprintf(&sb, `{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":%q},"valueQuantity":{"value":7.1}},"request":{"method":"POST","url":"Observation"}}`, urn)
	}
	sb.WriteString(`]}`)
	body := sb.String()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/fhir", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Prefer", "return=minimal")
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
		n += 100
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
}
