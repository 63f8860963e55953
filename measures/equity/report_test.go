package equity

import (
	"bytes"
	"context"
	"encoding/csv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

type cell struct {
	race string
	x, n int
}

// recordsOf expands per-race counts into patient records, with a
// preferred language alternating so a second stratifier has content.
func recordsOf(cells []cell) []Record {
	var recs []Record
	for _, c := range cells {
		for i := 0; i < c.n; i++ {
			lang := "en"
			if i%4 == 0 {
				lang = "es"
			}
			a := &Attributes{Race: c.race, Language: lang}
			recs = append(recs, Record{Attributes: a, InitialPopulation: true, Denominator: true, Numerator: i < c.x})
		}
	}
	return recs
}

// TestReportCompositeOracle builds the §6.2 example end to end: COL with a
// prior year (White 700/1000, Black 212/400) and GSD without, benchmarks
// 0.70 and 0.33, reference = largest group.
func TestReportCompositeOracle(t *testing.T) {
	colNow := []cell{{"2106-3", 720, 1000}, {"2054-5", 232, 400}, {"2131-1", 189, 300}, {"2028-9", 150, 200}, {"1002-5", 15, 25}, {Unknown, 45, 75}}
	colPrior := []cell{{"2106-3", 700, 1000}, {"2054-5", 212, 400}, {"2131-1", 189, 300}, {"2028-9", 150, 200}, {"1002-5", 15, 25}, {Unknown, 45, 75}}
	gsd := []cell{{"2106-3", 150, 500}, {"2054-5", 110, 250}, {"2131-1", 76, 200}, {"2028-9", 24, 100}}
	inputs := []MeasureInput{
		{ID: "COL", Canonical: "http://example.org/Measure/COL|2024", Direction: Increase, Records: recordsOf(colNow), Prior: recordsOf(colPrior), Benchmark: 0.70},
		{ID: "GSD", Canonical: "http://example.org/Measure/GSD|2024", Direction: Decrease, Records: recordsOf(gsd), Benchmark: 0.33},
	}
	opts := ReportOptions{
		Context:     ReportContext{EntityID: "plan-1", EntityType: "Organization", PeriodStart: "2024-01-01", PeriodEnd: "2024-12-31"},
		Stratifiers: [][]Dimension{{DimRace}, {DimLanguage}, {DimRace, DimLanguage}},
		Stratify:    Options{AgeAt: time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC)},
		Analysis:    AnalysisOptions{Strategy: RefLargest},
		Reporter:    "Organization/plan-1",
	}
	r, err := BuildReport(context.Background(), inputs, opts)
	require.NoError(t, err)
	require.Len(t, r.Measures, 2)
	col := r.Measures[0].Equity
	require.NotNil(t, col)
	assert.InDelta(t, 82.857143, col.Attainment, tol6)
	require.NotNil(t, col.Improvement)
	assert.Equal(t, 50.0, *col.Improvement)
	assert.InDelta(t, 66.428571, col.Score(), tol6)
	require.NotNil(t, r.Measures[1].Equity)
	assert.Nil(t, r.Measures[1].Equity.Improvement)
	assert.InDelta(t, 75.0, r.Measures[1].Equity.Score(), 1e-9)
	e := r.EquityScore()
	assert.InDelta(t, 70.714286, e, tol6)
	c, err := Composite(65, e, DefaultEquityWeight)
	require.NoError(t, err)
	assert.InDelta(t, 66.142857, c, tol6)

	var tidy, indices bytes.Buffer
	require.NoError(t, r.WriteCSV(&tidy, &indices))
	rows, err := csv.NewReader(&tidy).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, TidyColumns(), rows[0])
	headers := 0
	for _, row := range rows {
		if row[0] == "entity_id" {
			headers++
		}
	}
	assert.Equal(t, 1, headers, "one header for all measures and stratifiers")
	ix, err := csv.NewReader(&indices).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, IndexColumns(), ix[0])
	assert.Greater(t, len(ix), 10)

	mrs, err := r.MeasureReports()
	require.NoError(t, err)
	require.Len(t, mrs, 2)
	assert.Equal(t, "decrease", gjson.GetBytes(mrs[1], "improvementNotation.coding.0.code").String())
	assert.Len(t, gjson.GetBytes(mrs[0], "group.0.stratifier").Array(), 3)

	_, err = BuildReport(context.Background(), inputs, ReportOptions{})
	require.Error(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = BuildReport(ctx, inputs, opts)
	require.ErrorIs(t, err, context.Canceled)
}
