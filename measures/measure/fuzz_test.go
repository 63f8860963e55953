package measure

import (
	"testing"
)

func FuzzParseDefinition(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Measure","url":"u","library":["l"],"scoring":{"coding":[{"code":"cohort"}]},
		"group":[{"population":[{"code":{"coding":[{"code":"initial-population"}]},"criteria":{"language":"text/cql-identifier","expression":"IP"}}]}]}`))
	f.Add([]byte(`{"resourceType":"Measure"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := ParseDefinition(raw)
		if err != nil {
			return
		}
		// Whatever parses must satisfy what evaluation relies on.
		if len(d.Groups) == 0 || d.URL == "" || d.Library == "" {
			t.Fatalf("accepted a Measure without groups, url or library: %+v", d)
		}
		for _, g := range d.Groups {
			if g.Population(InitialPopulation) == nil {
				t.Fatalf("accepted a group without an initial population")
			}
			for _, p := range g.Populations {
				if p.Expression == "" {
					t.Fatalf("accepted a population without an expression")
				}
			}
		}
	})
}

func FuzzParsePeriod(f *testing.F) {
	f.Add("2025-01-01/2025-12-31")
	f.Add("2025/2026-02")
	f.Add("2025-01-01T00:00:00Z/2025-01-01T00:00:00.5+01:00")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod(s)
		if err != nil {
			return
		}
		if c, ok := compareDT(p); ok && c > 0 {
			t.Fatalf("start after end accepted: %q", s)
		}
	})
}
