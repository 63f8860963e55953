package access_test

import (
	"fmt"
	"testing"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/store"
)

// BenchmarkSees is the per-resource cost of the visibility rule for a
// provider with a 100k-member set, on resources of its own patients and
// of others (the common case of a broad search).
func BenchmarkSees(b *testing.B) {
	set := make(access.Set, 100_000)
	for i := range 100_000 {
		set[fmt.Sprintf("p%07d", i)] = true
	}
	p := &access.Principal{ClientID: "clinic", Organization: "org"}
	p.Restrict(access.Visibility{Patients: set, Groups: access.Set{}})
	cov := func(patient string) *store.Resource {
		return &store.Resource{Type: "Coverage", ID: "c", Body: []byte(`{"resourceType":"Coverage","id":"c","status":"active","identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MB"}]},"value":"M1"}],"subscriberId":"M1","beneficiary":{"reference":"Patient/` + patient + `"},"payor":[{"reference":"Organization/payer"}],"period":{"start":"2020-01-01"},"meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00Z"}}`)}
	}
	for _, tc := range []struct {
		name string
		res  *store.Resource
		want bool
	}{
		{"own", cov("p0000042"), true},
		{"other", cov("q0000042"), false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if p.Sees(tc.res) != tc.want {
					b.Fatal("wrong answer")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/resource")
		})
	}
}
