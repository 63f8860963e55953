package equity

import (
	"encoding/json"
	"testing"

	"github.com/equitas/equitas/fhir/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// exampleAStratification is §1.4 with CDC REC codes (Hispanic as a race
// stratum, as the example tabulates it, coded with a project code).
func exampleAStratification() Stratification {
	s := Stratification{Dimensions: []Dimension{DimRace}, Overall: Counts{InitialPopulation: 2000, Denominator: 2000, Numerator: 1351}}
	for _, g := range []struct {
		code string
		x, n int
	}{{"2106-3", 720, 1000}, {"2054-5", 232, 400}, {"hispanic", 189, 300}, {"2028-9", 150, 200}, {"1002-5", 15, 25}, {Unknown, 45, 75}} {
		s.Strata = append(s.Strata, Stratum{Values: []string{g.code}, Missing: g.code == Unknown,
			Counts: Counts{InitialPopulation: g.n, Denominator: g.n, Numerator: g.x}})
	}
	return s
}

func stratumByCode(t *testing.T, strat gjson.Result, code string) gjson.Result {
	t.Helper()
	s := strat.Get(`stratum.#(value.coding.0.code=="` + code + `")`)
	require.True(t, s.Exists(), code)
	return s
}

func TestStratifierJSONExampleA(t *testing.T) {
	a, err := Analyze(exampleAStratification(), Increase, AnalysisOptions{Strategy: RefLargest})
	require.NoError(t, err)
	raw, err := StratifierJSON(a, FHIROptions{})
	require.NoError(t, err)
	require.True(t, json.Valid(raw))
	doc := gjson.ParseBytes(raw)
	base := DefaultCanonicalBase + "/StructureDefinition/"

	assert.Equal(t, "race-omb1997", doc.Get("code.0.coding.0.code").String())
	black := stratumByCode(t, doc, "2054-5")
	assert.Equal(t, SystemCDCREC, black.Get("value.coding.0.system").String())
	assert.Equal(t, int64(400), black.Get(`population.#(code.coding.0.code=="denominator").count`).Int())
	assert.Equal(t, int64(232), black.Get(`population.#(code.coding.0.code=="numerator").count`).Int())
	assert.Equal(t, "0.58", black.Get("measureScore.value").Raw)
	ci := black.Get(`measureScore.extension.#(url=="` + base + `equity-ci").valueRange`)
	assert.Equal(t, "0.531096", ci.Get("low.value").Raw)
	assert.Equal(t, "0.627382", ci.Get("high.value").Raw)
	disp := black.Get(`extension.#(url=="` + base + `equity-disparity").extension`)
	assert.Equal(t, "largest", disp.Get(`#(url=="referenceStrategy").valueCode`).String())
	assert.Equal(t, "2106-3", disp.Get(`#(url=="referenceStratum").valueCoding.code`).String())
	assert.Equal(t, "0.14", disp.Get(`#(url=="absGap").valueDecimal`).Raw)
	assert.Equal(t, "1.5", disp.Get(`#(url=="disparityRatio").valueDecimal`).Raw)
	assert.Equal(t, "0.08464", disp.Get(`#(url=="absGapCI").valueRange.low.value`).Raw)
	assert.Equal(t, "0.195837", disp.Get(`#(url=="absGapCI").valueRange.high.value`).Raw)
	assert.Equal(t, "1.288329", disp.Get(`#(url=="drCI").valueRange.low.value`).Raw)
	assert.InDelta(t, 3.9e-7, disp.Get(`#(url=="pValue").valueDecimal`).Float(), 0.05e-7)

	// AIAN: privacy-suppressed — no counts, masked score, reason.
	aian := stratumByCode(t, doc, "1002-5")
	assert.False(t, aian.Get("population").Exists())
	assert.False(t, aian.Get("measureScore.value").Exists())
	assert.Equal(t, "masked", aian.Get(`measureScore.extension.#(url=="http://hl7.org/fhir/StructureDefinition/data-absent-reason").valueCode`).String())
	assert.Equal(t, "privacy-primary", aian.Get(`extension.#(url=="`+base+`equity-suppression").valueCode`).String())
	assert.False(t, aian.Get(`extension.#(url=="`+base+`equity-disparity")`).Exists())
	// Unknown: listed (complementary suppression here), never compared.
	unk := stratumByCode(t, doc, Unknown)
	assert.Equal(t, "privacy-complementary", unk.Get(`extension.#(url=="`+base+`equity-suppression").valueCode`).String())

	// Summary indices on the stratifier.
	idu := doc.Get(`extension.#(extension.0.valueCode=="id-unweighted").extension`)
	assert.Equal(t, "9.566228", idu.Get(`#(url=="value").valueDecimal`).Raw)
	assert.Equal(t, int64(4), idu.Get(`#(url=="J").valueInteger`).Int())
	bgv := doc.Get(`extension.#(extension.0.valueCode=="bgv").extension`)
	assert.Equal(t, "0.003858", bgv.Get(`#(url=="value").valueDecimal`).Raw)
	assert.Equal(t, "0.001382", bgv.Get(`#(url=="se").valueDecimal`).Raw)
}

func TestStratifierJSONComponentsAndSmallDenominator(t *testing.T) {
	attrs := []Attributes{{Race: "2106-3", Language: "en"}, {Race: "2054-5", Language: "es"}}
	var recs []Record
	for i := 0; i < 40; i++ {
		recs = append(recs, Record{Attributes: &attrs[0], InitialPopulation: true, Denominator: true, Numerator: i < 25})
	}
	for i := 0; i < 24; i++ {
		recs = append(recs, Record{Attributes: &attrs[1], InitialPopulation: true, Denominator: true, Numerator: i < 12})
	}
	s := Stratify(recs, []Dimension{DimRace, DimLanguage}, Options{})
	a, err := Analyze(s, Increase, AnalysisOptions{})
	require.NoError(t, err)
	assert.Nil(t, a.Indices, "one comparable stratum")
	raw, err := StratifierJSON(a, FHIROptions{Base: "https://example.org/fhir/"})
	require.NoError(t, err)
	doc := gjson.ParseBytes(raw)
	require.Len(t, doc.Get("code").Array(), 2)
	small := doc.Get(`stratum.#(component.0.value.coding.0.code=="2054-5")`)
	require.True(t, small.Exists())
	assert.Equal(t, "es", small.Get("component.1.value.coding.0.code").String())
	assert.Equal(t, "language-preferred", small.Get("component.1.code.coding.0.code").String())
	assert.Equal(t, "small-denominator", small.Get(`extension.#(url=="https://example.org/fhir/StructureDefinition/equity-suppression").valueCode`).String())
	assert.Equal(t, int64(24), small.Get(`population.#(code.coding.0.code=="denominator").count`).Int(), "counts of a small but releasable stratum are published")
	assert.Equal(t, "masked", small.Get("measureScore.extension.0.valueCode").String())
	white := doc.Get(`stratum.#(component.0.value.coding.0.code=="2106-3")`)
	assert.Equal(t, "0.625", white.Get("measureScore.value").Raw)
	assert.Equal(t, "best", white.Get(`extension.0.extension.#(url=="referenceStrategy").valueCode`).String())
	assert.Equal(t, "0", white.Get(`extension.0.extension.#(url=="absGap").valueDecimal`).Raw)
}

func TestMeasureReportJSON(t *testing.T) {
	race, err := Analyze(exampleAStratification(), Increase, AnalysisOptions{})
	require.NoError(t, err)
	attrs := []Attributes{{Language: "en"}, {Language: "es"}}
	var recs []Record
	for i := 0; i < 100; i++ {
		recs = append(recs, Record{Attributes: &attrs[i%2], InitialPopulation: true, Denominator: true, Numerator: i%3 == 0})
	}
	lang, err := Analyze(Stratify(recs, []Dimension{DimLanguage}, Options{}), Increase, AnalysisOptions{})
	require.NoError(t, err)
	raw, err := MeasureReportJSON(SummaryReport{Measure: "http://example.org/Measure/COL|1", PeriodStart: "2024-01-01",
		PeriodEnd: "2024-12-31", Reporter: "Organization/plan-1", Direction: Increase}, []Analysis{race, lang}, FHIROptions{})
	require.NoError(t, err)
	doc := gjson.ParseBytes(raw)
	assert.Equal(t, "summary", doc.Get("type").String())
	assert.Equal(t, "increase", doc.Get("improvementNotation.coding.0.code").String())
	assert.Equal(t, "Organization/plan-1", doc.Get("reporter.reference").String())
	assert.Equal(t, "0.6755", doc.Get("group.0.measureScore.value").Raw)
	assert.Equal(t, int64(1351), doc.Get(`group.0.population.#(code.coding.0.code=="numerator").count`).Int())
	require.Len(t, doc.Get("group.0.stratifier").Array(), 2)
	assert.Equal(t, "language-preferred", doc.Get("group.0.stratifier.1.code.0.coding.0.code").String())
	_, err = MeasureReportJSON(SummaryReport{}, nil, FHIROptions{})
	require.ErrorIs(t, err, ErrNoAnalyses)

	// The report, with masked, compared and cross-classified strata, is
	// valid R4 JSON for the validating parser the server uses.
	cross, err := Analyze(Stratify(recs, []Dimension{DimLanguage, DimSex}, Options{}), Increase, AnalysisOptions{Strategy: RefFixed, Benchmark: 0.5})
	require.NoError(t, err)
	raw, err = MeasureReportJSON(SummaryReport{Measure: "http://example.org/Measure/COL", PeriodStart: "2024-01-01",
		PeriodEnd: "2024-12-31", Direction: Decrease}, []Analysis{race, lang, cross}, FHIROptions{})
	require.NoError(t, err)
	v, err := validate.New()
	require.NoError(t, err)
	rt, _, err := v.Resource(raw)
	require.NoError(t, err, string(raw))
	assert.Equal(t, "MeasureReport", rt)
}
