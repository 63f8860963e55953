package equity

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dashboardOf renders a BuildReport result the way Run's Result does.
func dashboardOf(t *testing.T, inputs []MeasureInput, opts ReportOptions, start, end string) []byte {
	t.Helper()
	rep, err := BuildReport(context.Background(), inputs, opts)
	require.NoError(t, err)
	res := &Result{Report: rep, PeriodStart: start, PeriodEnd: end, Measures: make([]MeasureResult, len(inputs)),
		Quality: math.NaN(), Equity: math.NaN(), Composite: math.NaN(), EquityWeight: DefaultEquityWeight, Generated: time.Unix(0, 0)}
	b, err := res.DashboardJSON()
	require.NoError(t, err)
	return b
}

// TestSuppliedPriorReport: year-over-year from last year's dashboard
// document equals year-over-year from last year's records.
func TestSuppliedPriorReport(t *testing.T) {
	cur, prior := benchRecords(6000), benchRecords(5000)
	for i := range cur {
		// This year Black patients fall behind.
		if cur[i].Attributes.Race == "2054-5" && i%2 == 0 {
			cur[i].Numerator = false
		}
	}
	for i := range prior {
		// Last year was a little worse for everyone.
		prior[i].Numerator = prior[i].Numerator && i%7 != 0
	}
	opts := ReportOptions{Stratifiers: [][]Dimension{{DimRace}, {DimLanguage}, {DimRace, DimSex}},
		Analysis: AnalysisOptions{Strategy: RefLargest}}
	last := dashboardOf(t, []MeasureInput{{ID: "M", Direction: Increase, Records: prior}}, opts, "2024-01-01", "2024-12-31")
	d, err := ParseDashboard(last)
	require.NoError(t, err)
	ps, err := priorStrata(d, "M", "")
	require.NoError(t, err)
	require.Len(t, ps, 3)

	evaluated := dashboardOf(t, []MeasureInput{{ID: "M", Direction: Increase, Records: cur, Prior: prior}}, opts, "2025-01-01", "2025-12-31")
	supplied := dashboardOf(t, []MeasureInput{{ID: "M", Direction: Increase, Records: cur, PriorStrata: ps}}, opts, "2025-01-01", "2025-12-31")
	var ev, sp Dashboard
	require.NoError(t, json.Unmarshal(evaluated, &ev))
	require.NoError(t, json.Unmarshal(supplied, &sp))
	compared := 0
	for si, st := range ev.Measures[0].Stratifiers {
		for ki, s := range st.Strata {
			o := sp.Measures[0].Stratifiers[si].Strata[ki]
			require.Equal(t, s.Code, o.Code)
			if s.Prior == nil {
				assert.Nil(t, o.Prior, s.Code)
				continue
			}
			require.NotNil(t, o.Prior, s.Code)
			a, b := *s.Prior, *o.Prior
			for _, pair := range [][2]float64{{float64(a.Rate), float64(b.Rate)}, {float64(a.RateChange), float64(b.RateChange)},
				{float64(a.RateChangeP), float64(b.RateChangeP)}, {float64(a.PriorAbsGap), float64(b.PriorAbsGap)},
				{float64(a.GapChange), float64(b.GapChange)}, {float64(a.GapChangeP), float64(b.GapChangeP)}} {
				if math.IsNaN(float64(pair[0])) {
					assert.True(t, math.IsNaN(float64(pair[1])), s.Code)
					continue
				}
				assert.InDelta(t, float64(pair[0]), float64(pair[1]), 1e-6, s.Code)
			}
			assert.Equal(t, a.Trend, b.Trend, s.Code)
			compared++
		}
	}
	assert.Greater(t, compared, 10)

	// Completeness shares add up; an FDR flag implies a small p-value.
	fdr := 0
	race := ev.Measures[0].Stratifiers[0].Completeness
	assert.Positive(t, float64(race.Unknown), "benchRecords has unknown races")
	assert.Positive(t, float64(race.Declined), "benchRecords has declined races")
	for _, st := range ev.Measures[0].Stratifiers {
		c := st.Completeness
		assert.InDelta(t, 1, float64(c.Known+c.Unknown+c.Declined), 1e-6, st.Code)
		for _, s := range st.Strata {
			if s.Disparity != nil && s.Disparity.FDRSignificant {
				fdr++
				assert.LessOrEqual(t, float64(s.Disparity.PValue), 0.05, s.Code)
				assert.Positive(t, float64(s.Disparity.PValue), "%s: small p-values keep their digits", s.Code)
			}
		}
	}
	assert.Positive(t, fdr, "the planted gap is flagged")

	for _, bad := range []string{`nope`, `{"version":2,"period":{"start":"a","end":"b"}}`, `{"version":1}`} {
		_, err := ParseDashboard([]byte(bad))
		assert.ErrorIs(t, err, ErrPriorReport, bad)
	}
	missing, err := priorStrata(d, "other", "")
	require.NoError(t, err)
	assert.Nil(t, missing, "a measure the report does not have")
}
