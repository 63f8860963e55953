package attribution

import (
	"testing"
)

// FuzzAttribute feeds arbitrary Patient and claim JSON to every method:
// attribution must never panic, and a member it attributes has a provider.
func FuzzAttribute(f *testing.F) {
	f.Add(patient("pt", "Practitioner/p1"), coverage("pt", "2020-01-01", "", ""), eob("e1", "p1", "1000000001", "99213", "2025-05-01", 91))
	f.Add(patient("pt", ""), coverage("pt", "2020-01-01", "", "PractitionerRole/r2"), eob("e1", "p2", "", "99214", "2025-05", 0))
	f.Add([]byte(`{"id":"pt","generalPractitioner":[{"identifier":{"system":"`+SystemNPI+`","value":"1"}}]}`),
		[]byte(`{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/pt"},"period":{"start":"2"}}`),
		[]byte(`{"resourceType":"Claim","status":"active","item":[{"careTeamSequence":["x"],"productOrService":{"coding":[{"system":"hcpcs","code":"G0439"}]},"servicedPeriod":{"start":"2025-13-45"}}]}`))
	f.Add([]byte(`[]`), []byte(`null`), []byte(`{"item":7}`))
	dir := testDirectory()
	f.Fuzz(func(t *testing.T, pat, cov, claim []byte) {
		for _, m := range []Method{Prospective, Retrospective, Hybrid} {
			for _, recent := range []bool{false, true} {
				a := NewAttributor(dir, Options{Method: m, AsOf: day("2026-01-01"), MostRecent: recent})
				got, ok := a.Attribute(pat, [][]byte{cov, claim})
				if ok && got.Provider.NPI == "" && got.Provider.OrganizationID == "" {
					t.Fatalf("%s: attributed to nobody: %+v", m, got)
				}
			}
		}
	})
}
