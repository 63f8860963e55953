package loadtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/equitas/equitas/conformance/internal/equitasproc"
)

const seedPatients = 2000

// BenchmarkReadFixedRate reads random Patients at 1000 requests/s.
func BenchmarkReadFixedRate(b *testing.B) {
	base, ids := server(b)
	rng := rand.New(rand.NewPCG(1, 2))
	attack(b, 1000, func(t *vegeta.Target) {
		t.Method = http.MethodGet
		t.URL = base + "/Patient/" + ids[rng.IntN(len(ids))]
		t.Header = http.Header{"Accept": {"application/fhir+json"}}
	})
}

// BenchmarkSearchFixedRate searches a patient's Observations by code at
// 1000 requests/s.
func BenchmarkSearchFixedRate(b *testing.B) {
	base, ids := server(b)
	rng := rand.New(rand.NewPCG(3, 4))
	attack(b, 1000, func(t *vegeta.Target) {
		t.Method = http.MethodGet
		t.URL = base + "/Observation?patient=Patient/" + ids[rng.IntN(len(ids))] + "&code=http://loinc.org|4548-4"
		t.Header = http.Header{"Accept": {"application/fhir+json"}}
	})
}

func attack(b *testing.B, rate int, next func(*vegeta.Target)) {
	duration := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("LOAD_DURATION")); err == nil {
		duration = d
	}
	targeter := func(t *vegeta.Target) error { next(t); return nil }
	a := vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true))
	var m vegeta.Metrics
	b.ResetTimer()
	for range b.N {
		for r := range a.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, duration, "load") {
			m.Add(r)
		}
	}
	b.StopTimer()
	m.Close()
	if m.Success < 1 {
		errs := m.Errors
		if len(errs) > 3 {
			errs = errs[:3]
		}
		b.Fatalf("%.2f%% of requests succeeded; status codes %v, first errors %q", m.Success*100, m.StatusCodes, errs)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(m.Latencies.P50), "p50-ms")
	b.ReportMetric(ms(m.Latencies.P99), "p99-ms")
	b.ReportMetric(ms(m.Latencies.Max), "max-ms")
	b.ReportMetric(m.Throughput, "req/s")
	b.ReportMetric(0, "ns/op")
}

// server returns the FHIR base URL and the ids of seeded patients, each with
// one HbA1c Observation.
func server(b *testing.B) (string, []string) {
	b.Helper()
	base := os.Getenv("EQUITAS_URL")
	if base == "" {
		base = start(b)
	}
	base = strings.TrimRight(base, "/") + "/fhir"
	ids := make([]string, 0, seedPatients)
	for i := 0; i < seedPatients; i += 100 {
		var entries []any
		for j := i; j < i+100 && j < seedPatients; j++ {
			full := fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", j)
			entries = append(entries,
				map[string]any{"fullUrl": full, "request": map[string]any{"method": "POST", "url": "Patient"},
					"resource": map[string]any{"resourceType": "Patient", "gender": "female", "birthDate": "1970-01-01",
						"name": []any{map[string]any{"family": "Load", "given": []any{fmt.Sprint("P", j)}}}}},
				map[string]any{"request": map[string]any{"method": "POST", "url": "Observation"},
					"resource": map[string]any{"resourceType": "Observation", "status": "final",
						"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "4548-4"}}},
						"subject":           map[string]any{"reference": full},
						"effectiveDateTime": "2025-03-01T10:00:00Z",
						"valueQuantity":     map[string]any{"value": 7.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}})
		}
		body, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries})
		resp, err := http.Post(base, "application/fhir+json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		var out struct {
			Entry []struct {
				Response struct{ Location string } `json:"response"`
			} `json:"entry"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("seeding: status %d, %v", resp.StatusCode, err)
		}
		for _, e := range out.Entry {
			if rest, ok := strings.CutPrefix(e.Response.Location, "Patient/"); ok {
				ids = append(ids, strings.SplitN(rest, "/", 2)[0])
			}
		}
	}
	if len(ids) != seedPatients {
		b.Fatalf("seeded %d patients, want %d", len(ids), seedPatients)
	}
	return base, ids
}

// start builds and runs the real binary on a free loopback port.
func start(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	bin, err := equitasproc.Build(dir)
	if err != nil {
		b.Fatal(err)
	}
	srv := equitasproc.Start(b, bin, filepath.Join(dir, "data"))
	b.Cleanup(func() { srv.Stop(b) })
	return srv.Root
}
