package attribution

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestChoose(t *testing.T) {
	asOf := day("2026-01-01")
	svc := func(npi, date string, allowed float64) Service {
		return Service{NPI: npi, Date: day(date), Allowed: allowed}
	}
	tests := []struct {
		name       string
		services   []Service
		mostRecent bool
		want       string
		ok         bool
	}{
		{name: "no services", ok: false},
		{name: "plurality wins over recency", services: []Service{
			svc("A", "2025-02-01", 90), svc("A", "2025-03-01", 90), svc("B", "2025-12-20", 200),
		}, want: "A", ok: true},
		{name: "tie on count broken by most recent service", services: []Service{
			svc("A", "2025-02-01", 500), svc("B", "2025-06-01", 50), svc("A", "2025-05-01", 500), svc("B", "2025-01-15", 50),
		}, want: "B", ok: true},
		{name: "tie on count and date broken by highest allowed amount", services: []Service{
			svc("A", "2025-06-01", 91), svc("B", "2025-06-01", 129), svc("A", "2025-01-01", 57), svc("B", "2025-02-01", 57),
		}, want: "B", ok: true},
		{name: "complete tie broken by lowest NPI, whatever the order", services: []Service{
			svc("B", "2025-06-01", 91), svc("A", "2025-06-01", 91),
		}, want: "A", ok: true},
		{name: "services outside the 12-month window do not count", services: []Service{
			svc("A", "2024-12-31", 90), svc("A", "2024-06-01", 90), svc("B", "2025-01-01", 90), svc("A", "2026-01-01", 90),
		}, want: "B", ok: true},
		{name: "only services outside the window", services: []Service{svc("A", "2024-12-31", 90), svc("A", "2026-01-02", 90)}, ok: false},
		{name: "service without NPI ignored", services: []Service{svc("", "2025-06-01", 90), svc("C", "2025-03-01", 10)}, want: "C", ok: true},
		{name: "most recent visit instead of plurality", mostRecent: true, services: []Service{
			svc("A", "2025-02-01", 90), svc("A", "2025-03-01", 90), svc("B", "2025-12-20", 20),
		}, want: "B", ok: true},
		{name: "most recent visit: same day broken by allowed amount on that day", mostRecent: true, services: []Service{
			svc("A", "2025-12-20", 90), svc("B", "2025-12-20", 130), svc("A", "2025-03-01", 500),
		}, want: "B", ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Choose(tc.services, asOf, tc.mostRecent)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseMethod(t *testing.T) {
	for _, s := range []string{"prospective", "retrospective", "hybrid"} {
		m, err := ParseMethod(s)
		require.NoError(t, err)
		assert.Equal(t, s, string(m))
	}
	_, err := ParseMethod("plurality")
	assert.Error(t, err)
}

func TestDefaultEMCodes(t *testing.T) {
	set := DefaultEMCodes()
	for _, c := range []string{"99202", "99213", "99215", "99396", "G0439"} {
		assert.True(t, set[c], c)
	}
	for _, c := range []string{"99201", "99223", "99283", "99999"} {
		assert.False(t, set[c], fmt.Sprint(c, " is not outpatient E&M"))
	}
}
