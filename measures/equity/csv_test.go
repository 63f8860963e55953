package equity

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readCSV(t *testing.T, b []byte) []map[string]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	require.NoError(t, err)
	var out []map[string]string
	for _, r := range rows[1:] {
		require.Len(t, r, len(rows[0]))
		m := map[string]string{}
		for i, h := range rows[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func TestTidyCSVWithPriorYear(t *testing.T) {
	opts := AnalysisOptions{Strategy: RefLargest}
	cur, err := Analyze(exampleAStratification(), Increase, opts)
	require.NoError(t, err)
	ps := exampleAStratification()
	ps.Strata[0].Numerator, ps.Strata[1].Numerator = 700, 212 // 2023: White 0.70, Black 0.53
	prior, err := Analyze(ps, Increase, opts)
	require.NoError(t, err)

	rc := ReportContext{EntityID: "plan-1", EntityType: "Organization", MeasureID: "COL", PeriodStart: "2024-01-01", PeriodEnd: "2024-12-31"}
	var buf bytes.Buffer
	require.NoError(t, WriteTidyCSV(&buf, rc, cur, &prior, FHIROptions{}))
	rows := readCSV(t, buf.Bytes())
	require.Len(t, rows, 1+len(cur.Strata))
	assert.Equal(t, "overall", rows[0]["stratum_code"])
	assert.Equal(t, "0.6755", rows[0]["rate"])
	by := map[string]map[string]string{}
	for _, r := range rows[1:] {
		by[r["stratum_code"]] = r
	}
	black := by["2054-5"]
	for col, want := range map[string]string{
		"denominator": "400", "numerator": "232", "rate": "0.58", "ci_low": "0.531096", "ci_high": "0.627382",
		"reportable": "true", "suppression_reason": "none", "reference_strategy": "largest", "reference_stratum": "2106-3",
		"reference_rate": "0.72", "abs_gap": "0.14", "abs_gap_ci_low": "0.08464", "abs_gap_ci_high": "0.195837",
		"disparity_ratio": "1.5", "dr_ci_low": "1.288329", "dr_ci_high": "1.746448", "rate_ratio": "0.805556",
		"prior_rate": "0.53", "rate_change": "0.05", "rate_change_p": "0.15478",
		"prior_abs_gap": "0.17", "gap_change": "-0.03", "gap_change_p": "0.459275", "trend": "no-detectable-change",
		"stratum_system": SystemCDCREC, "stratum_display": "Black or African American", "data_source": "direct",
		"improvement_notation": "increase", "stratifier": "race-omb1997", "entity_id": "plan-1",
	} {
		assert.Equal(t, want, black[col], col)
	}
	aian := by["1002-5"]
	for _, col := range []string{"denominator", "numerator", "rate", "ci_low", "abs_gap", "prior_rate"} {
		assert.Empty(t, aian[col], "suppressed cells are empty, never 0: %s", col)
	}
	assert.Equal(t, "privacy-primary", aian["suppression_reason"])
	assert.Equal(t, "unknown", by[Unknown]["data_source"])

	buf.Reset()
	require.NoError(t, WriteIndicesCSV(&buf, rc, cur, &prior))
	ix := readCSV(t, buf.Bytes())
	require.Len(t, ix, 10)
	idx := map[string]map[string]string{}
	for _, r := range ix {
		idx[r["index_name"]] = r
	}
	assert.Equal(t, "9.566228", idx["id-unweighted"]["value"])
	assert.Equal(t, "4", idx["id-unweighted"]["J"])
	assert.Equal(t, "0.001148", idx["bgv"]["ci_low"])
	assert.Equal(t, "0.006567", idx["bgv"]["ci_high"])
	assert.NotEmpty(t, idx["id-best"]["prior_value"])
	assert.NotEmpty(t, idx["id-best"]["change_pct"])
	assert.Empty(t, idx["id-best"]["se"], "no closed-form SE")
}
