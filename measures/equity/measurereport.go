package equity

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SummaryReport describes the summary MeasureReport an equity report is
// rendered into (§6.4): one group with the overall populations and one
// stratifier per Analysis.
type SummaryReport struct {
	// Measure is the Measure canonical (url|version).
	Measure     string
	PeriodStart string
	PeriodEnd   string
	// Reporter is a reference such as "Organization/plan-1" (optional).
	Reporter string
	// Date stamps the report; zero means time.Now().
	Date      time.Time
	Direction Direction
}

// ErrNoAnalyses is returned when a summary report has no stratifier.
var ErrNoAnalyses = errors.New("equity: summary report needs at least one analysis")

// MeasureReportJSON renders a summary MeasureReport (R4) whose single group
// carries the overall counts and rate (from the first analysis; all are
// expected to stratify the same population) and one stratifier per
// analysis, built by StratifierJSON.
func MeasureReportJSON(sr SummaryReport, analyses []Analysis, opts FHIROptions) ([]byte, error) {
	if len(analyses) == 0 {
		return nil, ErrNoAnalyses
	}
	date := sr.Date
	if date.IsZero() {
		date = time.Now()
	}
	first := analyses[0]
	o := first.Overall
	sc := &score{Value: dec(o.Rate())}
	if e, ok := rangeExt(opts.base()+"/StructureDefinition/equity-ci", first.OverallCI); ok {
		sc.Extension = append(sc.Extension, e)
	}
	if sc.Value == nil {
		sc = nil
	}
	group := struct {
		Population   []population      `json:"population"`
		MeasureScore *score            `json:"measureScore,omitempty"`
		Stratifier   []json.RawMessage `json:"stratifier"`
	}{
		Population: []population{
			popJSON("initial-population", o.InitialPopulation),
			popJSON("denominator", o.Denominator+o.Exclusions),
			popJSON("denominator-exclusion", o.Exclusions),
			popJSON("numerator", o.Numerator),
		},
		MeasureScore: sc,
	}
	for _, a := range analyses {
		b, err := StratifierJSON(a, opts)
		if err != nil {
			return nil, err
		}
		group.Stratifier = append(group.Stratifier, b)
	}
	type ref struct {
		Reference string `json:"reference"`
	}
	report := struct {
		ResourceType        string  `json:"resourceType"`
		Status              string  `json:"status"`
		Type                string  `json:"type"`
		Measure             string  `json:"measure"`
		Date                string  `json:"date"`
		Reporter            *ref    `json:"reporter,omitempty"`
		Period              any     `json:"period"`
		ImprovementNotation concept `json:"improvementNotation"`
		Group               []any   `json:"group"`
	}{
		ResourceType: "MeasureReport", Status: "complete", Type: "summary", Measure: sr.Measure,
		Date:                date.UTC().Format(time.RFC3339),
		Period:              map[string]string{"start": sr.PeriodStart, "end": sr.PeriodEnd},
		ImprovementNotation: concept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/measure-improvement-notation", Code: sr.Direction.Code()}}},
		Group:               []any{group},
	}
	if sr.Reporter != "" {
		report.Reporter = &ref{sr.Reporter}
	}
	b, err := json.Marshal(report)
	if err != nil {
		return nil, fmt.Errorf("equity: measure report JSON: %w", err)
	}
	return b, nil
}
