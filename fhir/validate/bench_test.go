package validate

import "testing"

func benchmarkResource(b *testing.B, body string) {
	v, err := New()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, _, err := v.Resource([]byte(body)); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
}

func BenchmarkResourcePatient(b *testing.B)     { benchmarkResource(b, patient) }
func BenchmarkResourceObservation(b *testing.B) { benchmarkResource(b, observation) }

// BenchmarkPrescan measures the FHIR-JSON pre-scan alone, the overhead this
// package adds in front of google/fhir.
func BenchmarkPrescan(b *testing.B) {
	b.SetBytes(int64(len(patient)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := prescan([]byte(patient)); err != nil {
			b.Fatal(err.msg)
		}
	}
}
