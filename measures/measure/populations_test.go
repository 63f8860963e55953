package measure

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func group(scoring Scoring, basis string, codes ...string) *Group {
	g := &Group{Scoring: scoring, Basis: basis}
	for _, c := range codes {
		g.Populations = append(g.Populations, Population{ID: c, Code: c, Expression: c})
	}
	return g
}

// raw builds raw criteria results from "code → members" for g's populations.
func raw(g *Group, m map[string][]string) []RawPopulation {
	out := make([]RawPopulation, len(g.Populations))
	for i, p := range g.Populations {
		out[i].Members = m[p.Code]
	}
	return out
}

func counts(g *Group, r GroupResult) map[string]int {
	out := map[string]int{}
	for i, p := range g.Populations {
		out[p.Code] = r.Populations[i].Count()
	}
	return out
}

func TestApplyRulesProportionPatientBased(t *testing.T) {
	g := group(Proportion, BooleanBasis, InitialPopulation, Denominator, DenominatorExclusion, Numerator, NumeratorExclusion, DenominatorException)
	p := []string{PatientUnit}
	tests := []struct {
		name string
		in   map[string][]string
		want map[string]int
	}{
		{"not in IP: nothing counts", map[string][]string{Denominator: p, Numerator: p},
			map[string]int{InitialPopulation: 0, Denominator: 0, DenominatorExclusion: 0, Numerator: 0, NumeratorExclusion: 0, DenominatorException: 0}},
		{"numerator met", map[string][]string{InitialPopulation: p, Denominator: p, Numerator: p},
			map[string]int{InitialPopulation: 1, Denominator: 1, DenominatorExclusion: 0, Numerator: 1, NumeratorExclusion: 0, DenominatorException: 0}},
		{"exclusion removes numerator (inverse measures' 'no record' numerators)", map[string][]string{InitialPopulation: p, Denominator: p, DenominatorExclusion: p, Numerator: p, DenominatorException: p},
			map[string]int{InitialPopulation: 1, Denominator: 1, DenominatorExclusion: 1, Numerator: 0, NumeratorExclusion: 0, DenominatorException: 0}},
		{"exception only when not in numerator", map[string][]string{InitialPopulation: p, Denominator: p, Numerator: p, DenominatorException: p},
			map[string]int{InitialPopulation: 1, Denominator: 1, DenominatorExclusion: 0, Numerator: 1, NumeratorExclusion: 0, DenominatorException: 0}},
		{"exception counts outside the numerator", map[string][]string{InitialPopulation: p, Denominator: p, DenominatorException: p},
			map[string]int{InitialPopulation: 1, Denominator: 1, DenominatorExclusion: 0, Numerator: 0, NumeratorExclusion: 0, DenominatorException: 1}},
		{"numerator exclusion within numerator only", map[string][]string{InitialPopulation: p, Denominator: p, NumeratorExclusion: p},
			map[string]int{InitialPopulation: 1, Denominator: 1, DenominatorExclusion: 0, Numerator: 0, NumeratorExclusion: 0, DenominatorException: 0}},
		{"denominator needs IP", map[string][]string{Denominator: p, DenominatorExclusion: p},
			map[string]int{InitialPopulation: 0, Denominator: 0, DenominatorExclusion: 0, Numerator: 0, NumeratorExclusion: 0, DenominatorException: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ApplyRules(g, raw(g, tt.in))
			assert.Equal(t, tt.want, counts(g, r))
		})
	}
}

func TestApplyRulesEpisodeBased(t *testing.T) {
	g := group(Proportion, "Encounter", InitialPopulation, Denominator, DenominatorExclusion, Numerator, DenominatorException)
	r := ApplyRules(g, raw(g, map[string][]string{
		InitialPopulation:    {"Encounter/1", "Encounter/2", "Encounter/3"},
		Denominator:          {"Encounter/1", "Encounter/2", "Encounter/4"}, // 4 is not in the IP
		DenominatorExclusion: {"Encounter/2", "Encounter/2"},                // duplicates count once
		Numerator:            {"Encounter/1", "Encounter/2"},                // 2 is excluded
		DenominatorException: {"Encounter/1", "Encounter/3"},                // 1 is in the numerator, 3 not in denominator
	}))
	assert.Equal(t, map[string]int{InitialPopulation: 3, Denominator: 2, DenominatorExclusion: 1, Numerator: 1, DenominatorException: 0}, counts(g, r))
	assert.Equal(t, []string{"Encounter/1"}, r.Populations[3].Members)
	score, ok := Score(g, r.Count, nil)
	require.True(t, ok)
	assert.InDelta(t, 1.0, score, 1e-9)
}

func TestApplyRulesRatioNumeratorIndependentOfDenominator(t *testing.T) {
	g := group(Ratio, "Encounter", InitialPopulation, Denominator, DenominatorExclusion, Numerator, NumeratorExclusion)
	r := ApplyRules(g, raw(g, map[string][]string{
		InitialPopulation:    {"a", "b", "c"},
		Denominator:          {"a", "b"},
		DenominatorExclusion: {"b"},
		Numerator:            {"b", "c", "z"},
		NumeratorExclusion:   {"c"},
	}))
	assert.Equal(t, map[string]int{InitialPopulation: 3, Denominator: 2, DenominatorExclusion: 1, Numerator: 2, NumeratorExclusion: 1}, counts(g, r))
	score, ok := Score(g, r.Count, nil)
	require.True(t, ok)
	assert.InDelta(t, 1.0, score, 1e-9) // (2-1)/(2-1)
}

func TestApplyRulesRatioTwoInitialPopulations(t *testing.T) {
	g := &Group{Scoring: Ratio, Basis: BooleanBasis, Populations: []Population{
		{ID: "ip1", Code: InitialPopulation}, {ID: "ip2", Code: InitialPopulation},
		{ID: "den", Code: Denominator, CriteriaReference: "ip1"}, {ID: "num", Code: Numerator, CriteriaReference: "ip2"},
	}}
	in := []RawPopulation{{Members: []string{PatientUnit}}, {}, {Members: []string{PatientUnit}}, {Members: []string{PatientUnit}}}
	r := ApplyRules(g, in)
	assert.Equal(t, 1, r.Populations[2].Count(), "denominator drawn from ip1")
	assert.Equal(t, 0, r.Populations[3].Count(), "numerator drawn from ip2, which is empty")
}

func TestApplyRulesContinuousVariable(t *testing.T) {
	g := &Group{Scoring: ContinuousVariable, Basis: "Encounter", Populations: []Population{
		{ID: "ip", Code: InitialPopulation}, {ID: "mp", Code: MeasurePopulation}, {ID: "mpx", Code: MeasurePopulationExclusion},
		{ID: "obs", Code: MeasureObservation, CriteriaReference: "mp", AggregateMethod: "median"},
	}}
	in := []RawPopulation{
		{Members: []string{"e1", "e2", "e3", "e4"}},
		{Members: []string{"e1", "e2", "e3"}},
		{Members: []string{"e3"}},
		{Observations: []Observation{{"e1", 10}, {"e2", 30}, {"e3", 1000}, {"e4", 5}}},
	}
	assert.ElementsMatch(t, []string{"e1", "e2"}, ObservedUnits(g, in, 3))
	r := ApplyRules(g, in)
	assert.Equal(t, 2, r.Populations[3].Count(), "observations only for the measure population less exclusions")
	score, ok := Score(g, r.Count, func(i int) []float64 {
		var v []float64
		for _, o := range r.Populations[i].Observations {
			v = append(v, o.Value)
		}
		return v
	})
	require.True(t, ok)
	assert.InDelta(t, 20.0, score, 1e-9)
}

func TestScore(t *testing.T) {
	g := group(Proportion, BooleanBasis, InitialPopulation, Denominator, DenominatorExclusion, Numerator, DenominatorException)
	tests := []struct {
		name   string
		counts map[string]int
		want   float64
		ok     bool
	}{
		{"plain", map[string]int{Denominator: 10, Numerator: 4}, 0.4, true},
		{"exclusions and exceptions leave the denominator", map[string]int{Denominator: 10, DenominatorExclusion: 3, DenominatorException: 2, Numerator: 4}, 0.8, true},
		{"empty denominator has no score", map[string]int{Denominator: 2, DenominatorExclusion: 2}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := Score(g, func(c string) int { return tt.counts[c] }, nil)
			assert.Equal(t, tt.ok, ok)
			assert.InDelta(t, tt.want, s, 1e-9)
		})
	}
	_, ok := Score(group(Cohort, BooleanBasis, InitialPopulation), func(string) int { return 5 }, nil)
	assert.False(t, ok, "cohort measures have no score")
}

func TestAggregate(t *testing.T) {
	vals := []float64{4, 1, 3, 2}
	tests := []struct {
		method string
		want   float64
	}{{"sum", 10}, {"", 10}, {"average", 2.5}, {"median", 2.5}, {"min", 1}, {"max", 4}, {"count", 4}}
	for _, tt := range tests {
		got, ok := Aggregate(tt.method, vals)
		require.True(t, ok, tt.method)
		assert.InDelta(t, tt.want, got, 1e-9, tt.method)
	}
	_, ok := Aggregate("median", nil)
	assert.False(t, ok)
}

// TestNeededNeverChangesResults checks the evaluation short-cuts: skipping
// the populations `needed` rejects must give the same populations as
// evaluating everything, for random criteria results.
func TestNeededNeverChangesResults(t *testing.T) {
	units := []string{"a", "b", "c"}
	for _, scoring := range []Scoring{Proportion, Ratio, ContinuousVariable} {
		g := group(scoring, "Encounter", InitialPopulation, Denominator, DenominatorExclusion, Numerator, NumeratorExclusion, DenominatorException)
		if scoring == ContinuousVariable {
			g = group(scoring, "Encounter", InitialPopulation, MeasurePopulation, MeasurePopulationExclusion)
		}
		rng := uint32(7)
		next := func() uint32 { rng = rng*1664525 + 1013904223; return rng >> 16 }
		for trial := 0; trial < 2000; trial++ {
			full := make([]RawPopulation, len(g.Populations))
			for i := range full {
				for _, u := range units {
					if next()%2 == 0 {
						full[i].Members = append(full[i].Members, u)
					}
				}
			}
			skipped := make([]RawPopulation, len(g.Populations))
			evaluated := make([]bool, len(g.Populations))
			for i, p := range g.Populations {
				if p.Code == InitialPopulation {
					skipped[i], evaluated[i] = full[i], true
				}
			}
			for _, code := range evaluationOrder {
				for i, p := range g.Populations {
					if p.Code == code && !evaluated[i] && needed(g, skipped, evaluated, i) {
						skipped[i], evaluated[i] = full[i], true
					}
				}
			}
			want, got := ApplyRules(g, full), ApplyRules(g, skipped)
			require.Equal(t, counts(g, want), counts(g, got), "%s trial %d: %+v", scoring, trial, full)
		}
	}
}

func TestGap(t *testing.T) {
	p := []string{PatientUnit}
	tests := []struct {
		name     string
		notation string
		basis    string
		in       map[string][]string
		want     GapStatus
	}{
		{"not in IP", "increase", BooleanBasis, map[string][]string{Denominator: p}, NotApplicable},
		{"denominator only: open", "increase", BooleanBasis, map[string][]string{InitialPopulation: p, Denominator: p}, OpenGap},
		{"numerator: closed", "increase", BooleanBasis, map[string][]string{InitialPopulation: p, Denominator: p, Numerator: p}, ClosedGap},
		{"excluded: not applicable", "increase", BooleanBasis, map[string][]string{InitialPopulation: p, Denominator: p, DenominatorExclusion: p}, NotApplicable},
		{"excepted: not applicable", "increase", BooleanBasis, map[string][]string{InitialPopulation: p, Denominator: p, DenominatorException: p}, NotApplicable},
		{"inverse: numerator is the gap", "decrease", BooleanBasis, map[string][]string{InitialPopulation: p, Denominator: p, Numerator: p}, OpenGap},
		{"inverse: outside numerator is closed", "decrease", BooleanBasis, map[string][]string{InitialPopulation: p, Denominator: p}, ClosedGap},
		{"episodes: one open episode opens the gap", "increase", "Encounter", map[string][]string{
			InitialPopulation: {"e1", "e2"}, Denominator: {"e1", "e2"}, Numerator: {"e1"}}, OpenGap},
		{"episodes: all closed", "increase", "Encounter", map[string][]string{
			InitialPopulation: {"e1", "e2"}, Denominator: {"e1", "e2"}, DenominatorExclusion: {"e2"}, Numerator: {"e1"}}, ClosedGap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := group(Proportion, tt.basis, InitialPopulation, Denominator, DenominatorExclusion, Numerator, DenominatorException)
			g.ImprovementNotation = tt.notation
			r := ApplyRules(g, raw(g, tt.in))
			assert.Equal(t, tt.want, Gap(g, &r))
		})
	}
	cohort := group(Cohort, BooleanBasis, InitialPopulation)
	r := ApplyRules(cohort, raw(cohort, map[string][]string{InitialPopulation: p}))
	assert.Equal(t, NotApplicable, Gap(cohort, &r))
}
