package report

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/measure"
)

func proportionDef(basis string) *measure.Definition {
	return &measure.Definition{
		URL: "http://example.org/Measure/m", Version: "1.0",
		Groups: []measure.Group{{
			ID: "g1", Scoring: measure.Proportion, Basis: basis, ImprovementNotation: "increase", GroupLevelImprovementNotation: true,
			Populations: []measure.Population{
				{ID: "ip", Code: measure.InitialPopulation}, {ID: "den", Code: measure.Denominator},
				{ID: "denex", Code: measure.DenominatorExclusion}, {ID: "num", Code: measure.Numerator},
			},
			Stratifiers: []measure.Stratifier{{ID: "sex", Code: &measure.Concept{Text: "sex"}, Expression: "Sex"}},
		}},
		SupplementalData: []measure.SupplementalData{{ID: "sde-sex", Expression: "SDE Sex"}},
	}
}

var (
	male   = measure.Value{Key: "M", Concept: measure.Concept{Coding: []measure.Coding{{System: "http://hl7.org/fhir/administrative-gender", Code: "male"}}}}
	female = measure.Value{Key: "F", Concept: measure.Concept{Coding: []measure.Coding{{System: "http://hl7.org/fhir/administrative-gender", Code: "female"}}}}
)

// patient builds a patient-based result from criteria flags (ip, den, denex, num).
func patient(def *measure.Definition, id string, sex measure.Value, flags ...bool) *measure.PatientResult {
	g := &def.Groups[0]
	raw := make([]measure.RawPopulation, len(g.Populations))
	for i, f := range flags {
		if f {
			raw[i].Members = []string{measure.PatientUnit}
		}
	}
	gr := measure.ApplyRules(g, raw)
	gr.Stratifiers = []measure.StratifierResult{{Strata: []measure.StratumUnits{{Value: measure.StratumValue{Key: sex.Key, Value: &sex}, Units: []string{measure.PatientUnit}}}}}
	return &measure.PatientResult{PatientID: id, Groups: []measure.GroupResult{gr}, SDE: []measure.SDEResult{{ID: "sde-sex", Values: []measure.Value{sex}}}}
}

func popCounts(pops []Population) map[string]int {
	out := map[string]int{}
	for _, p := range pops {
		out[p.Code.Coding[0].Code] = p.Count
	}
	return out
}

func TestSummaryCountsScoreStrataAndSDE(t *testing.T) {
	def := proportionDef(measure.BooleanBasis)
	opts := Options{Period: Period{Start: "2025-01-01", End: "2025-12-31"}, Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Reporter: "Organization/o1"}
	agg := NewSummary(def, opts)
	agg.Add(patient(def, "p1", male, true, true, false, true))    // numerator
	agg.Add(patient(def, "p2", female, true, true, false, false)) // denominator only
	agg.Add(patient(def, "p3", female, true, true, true, true))   // excluded: numerator does not count
	agg.Add(patient(def, "p4", male, false, true, false, true))   // not in IP: nothing counts
	agg.Add(&measure.PatientResult{PatientID: "p5", Err: fmt.Errorf("boom")})
	rep := agg.Report()

	total, failed := agg.Patients()
	assert.Equal(t, 5, total)
	assert.Equal(t, 1, failed)
	assert.Equal(t, "summary", rep.Type)
	assert.Equal(t, "complete", rep.Status)
	assert.Equal(t, "http://example.org/Measure/m|1.0", rep.Measure)
	assert.Equal(t, "2026-01-02T03:04:05Z", rep.Date)
	assert.Equal(t, &Period{Start: "2025-01-01", End: "2025-12-31"}, rep.Period)
	assert.Nil(t, rep.Subject)
	require.Len(t, rep.Group, 1)
	g := rep.Group[0]
	assert.Equal(t, map[string]int{"initial-population": 3, "denominator": 3, "denominator-exclusion": 1, "numerator": 1}, popCounts(g.Population))
	require.NotNil(t, g.MeasureScore)
	assert.InDelta(t, 0.5, g.MeasureScore.Value, 1e-9) // 1 / (3-1)

	require.Len(t, g.Stratifier, 1)
	strata := map[string]Stratum{}
	for _, s := range g.Stratifier[0].Stratum {
		strata[s.Value.Coding[0].Code] = s
	}
	require.Len(t, strata, 2)
	assert.Equal(t, map[string]int{"initial-population": 1, "denominator": 1, "denominator-exclusion": 0, "numerator": 1}, popCounts(strata["male"].Population))
	assert.InDelta(t, 1.0, strata["male"].MeasureScore.Value, 1e-9)
	assert.Equal(t, map[string]int{"initial-population": 2, "denominator": 2, "denominator-exclusion": 1, "numerator": 0}, popCounts(strata["female"].Population))
	assert.InDelta(t, 0.0, strata["female"].MeasureScore.Value, 1e-9)

	// Supplemental data: one contained Observation per value, counted.
	sde := map[string]int{}
	for _, c := range rep.Contained {
		o := c.(Observation)
		sde[o.Code.Coding[0].Code] = *o.ValueInteger
	}
	assert.Equal(t, map[string]int{"male": 2, "female": 2}, sde)
	require.Len(t, rep.Extension, 3, "two supplemental data references and the evaluation-error count")
	assert.Equal(t, ExtEvaluationError, rep.Extension[0].URL)
	assert.Contains(t, rep.Extension[0].ValueString, "1 of 5 patients")

	// DEQM: scoring and group improvement notation on the group.
	var urls []string
	for _, e := range g.Extension {
		urls = append(urls, e.URL)
	}
	assert.Contains(t, urls, ExtMeasureScoring)
	assert.Contains(t, urls, ExtGroupImprovementNotation)

	_, err := json.Marshal(rep)
	require.NoError(t, err)
}

func TestSubjectListListsSubjectsPerPopulation(t *testing.T) {
	def := proportionDef(measure.BooleanBasis)
	agg := NewSubjectList(def, Options{})
	agg.Add(patient(def, "b", male, true, true, false, true))
	agg.Add(patient(def, "a", female, true, true, false, false))
	rep := agg.Report()
	assert.Equal(t, "subject-list", rep.Type)
	lists := map[string]List{}
	for _, c := range rep.Contained {
		if l, ok := c.(List); ok {
			lists["#"+l.ID] = l
		}
	}
	subjects := func(p Population) []string {
		require.NotNil(t, p.SubjectResults)
		var out []string
		for _, e := range lists[p.SubjectResults.Reference].Entry {
			out = append(out, e.Item.Reference)
		}
		return out
	}
	pops := rep.Group[0].Population
	assert.Equal(t, []string{"Patient/a", "Patient/b"}, subjects(pops[0]), "initial population, sorted")
	assert.Equal(t, []string{"Patient/b"}, subjects(pops[3]), "numerator")
	assert.Empty(t, subjects(pops[2]), "denominator exclusion")
	// Each stratum population has its own list.
	for _, s := range rep.Group[0].Stratifier[0].Stratum {
		for _, p := range s.Population {
			assert.NotNil(t, p.SubjectResults)
		}
	}
}

func TestIndividualEpisodeBased(t *testing.T) {
	def := proportionDef("Encounter")
	g := &def.Groups[0]
	gr := measure.ApplyRules(g, []measure.RawPopulation{
		{Members: []string{"Encounter/1", "Encounter/2"}},
		{Members: []string{"Encounter/1", "Encounter/2"}},
		{Members: []string{"Encounter/2"}},
		{Members: []string{"Encounter/1", "Encounter/2"}},
	})
	rep := Individual(def, Options{Period: Period{Start: "2026-01-01", End: "2026-12-31"}}, &measure.PatientResult{PatientID: "p1", Groups: []measure.GroupResult{gr}})
	assert.Equal(t, "individual", rep.Type)
	require.NotNil(t, rep.Subject)
	assert.Equal(t, "Patient/p1", rep.Subject.Reference)
	assert.Equal(t, map[string]int{"initial-population": 2, "denominator": 2, "denominator-exclusion": 1, "numerator": 1}, popCounts(rep.Group[0].Population))
	require.NotNil(t, rep.Group[0].MeasureScore)
	assert.InDelta(t, 1.0, rep.Group[0].MeasureScore.Value, 1e-9)
	assert.Equal(t, []string{ProfileIndividual}, rep.Meta.Profile)
	// Each counted episode is an evaluated resource tagged with its population.
	byPop := map[string][]string{}
	for _, e := range rep.EvaluatedResource {
		require.Len(t, e.Extension, 1)
		byPop[e.Extension[0].ValueString] = append(byPop[e.Extension[0].ValueString], e.Reference)
	}
	assert.Equal(t, map[string][]string{"ip": {"Encounter/1", "Encounter/2"}, "den": {"Encounter/1", "Encounter/2"}, "denex": {"Encounter/2"}, "num": {"Encounter/1"}}, byPop)
}

func TestIndividualFailedPatient(t *testing.T) {
	def := proportionDef(measure.BooleanBasis)
	rep := Individual(def, Options{}, &measure.PatientResult{PatientID: "p1", Err: fmt.Errorf("engine: bad data")})
	assert.Equal(t, "error", rep.Status)
	require.Len(t, rep.Extension, 1)
	assert.Contains(t, rep.Extension[0].ValueString, "bad data")
	assert.Equal(t, 0, popCounts(rep.Group[0].Population)["initial-population"])
}

func TestStratifierAppliesTo(t *testing.T) {
	def := proportionDef(measure.BooleanBasis)
	def.Groups[0].Stratifiers[0].AppliesTo = []string{measure.InitialPopulation}
	agg := NewSummary(def, Options{})
	agg.Add(patient(def, "p1", male, true, true, false, true))
	p := patient(def, "p2", male, true, true, false, true)
	rep := agg.Report()
	require.Len(t, rep.Group[0].Stratifier[0].Stratum, 1)
	s := rep.Group[0].Stratifier[0].Stratum[0]
	assert.Equal(t, map[string]int{"initial-population": 1}, popCounts(s.Population), "only the populations it applies to")
	assert.Nil(t, s.MeasureScore)
	ind := Individual(def, Options{}, p)
	assert.Equal(t, map[string]int{"initial-population": 1}, popCounts(ind.Group[0].Stratifier[0].Stratum[0].Population))
}

func TestSummaryMultipleGroups(t *testing.T) {
	def := proportionDef(measure.BooleanBasis)
	second := def.Groups[0]
	second.ID, second.Index, second.Scoring, second.Stratifiers = "g2", 1, measure.Cohort, nil
	second.Populations = []measure.Population{{ID: "ip2", Code: measure.InitialPopulation}}
	def.Groups = append(def.Groups, second)
	agg := NewSummary(def, Options{})
	for i, inCohort := range []bool{true, false, true} {
		r := patient(def, fmt.Sprintf("p%d", i), male, true, true, false, i == 0)
		var raw []measure.RawPopulation
		if inCohort {
			raw = []measure.RawPopulation{{Members: []string{measure.PatientUnit}}}
		} else {
			raw = []measure.RawPopulation{{}}
		}
		r.Groups = append(r.Groups, measure.ApplyRules(&def.Groups[1], raw))
		agg.Add(r)
	}
	rep := agg.Report()
	require.Len(t, rep.Group, 2)
	assert.Equal(t, map[string]int{"initial-population": 3, "denominator": 3, "denominator-exclusion": 0, "numerator": 1}, popCounts(rep.Group[0].Population))
	assert.InDelta(t, 1.0/3, rep.Group[0].MeasureScore.Value, 1e-9)
	assert.Equal(t, "g2", rep.Group[1].ID)
	assert.Equal(t, map[string]int{"initial-population": 2}, popCounts(rep.Group[1].Population))
	assert.Nil(t, rep.Group[1].MeasureScore, "cohort groups have no score")
}
