package measure

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDefinitionRealMeasures(t *testing.T) {
	root := filepath.Join(measuretest.SharedDir(t), "ecqm", "measures")
	tests := []struct {
		folder      string
		basis       string
		notation    string
		populations []string
		sde         int
	}{
		{"ControllingHighBloodPressureFHIR", BooleanBasis, "decrease", []string{InitialPopulation, Denominator, DenominatorExclusion, Numerator}, 4},
		{"DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR", BooleanBasis, "decrease", []string{InitialPopulation, Denominator, DenominatorExclusion, Numerator}, 0},
		{"CMS71FHIRSTKAnticoagAFFlutter", "Encounter", "increase", []string{InitialPopulation, Denominator, DenominatorExclusion, Numerator, DenominatorException}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.folder, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, tt.folder, "Measure.json"))
			require.NoError(t, err)
			d, err := ParseDefinition(raw)
			require.NoError(t, err)
			require.Len(t, d.Groups, 1)
			g := d.Groups[0]
			assert.Equal(t, Proportion, g.Scoring)
			assert.Equal(t, tt.basis, g.Basis)
			assert.Equal(t, tt.notation, g.ImprovementNotation)
			var codes []string
			for _, p := range g.Populations {
				codes = append(codes, p.Code)
				assert.NotEmpty(t, p.Expression)
			}
			assert.Equal(t, tt.populations, codes)
			assert.Len(t, d.SupplementalData, tt.sde)
			assert.Empty(t, g.Stratifiers, "placeholder stratifiers without expressions are dropped")
			assert.NotEmpty(t, d.EffectiveStart)
			assert.Contains(t, d.Library, "/Library/")
		})
	}
}

func TestParseDefinitionErrors(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"not JSON", `{`, "malformed JSON"},
		{"wrong type", `{"resourceType":"Library"}`, "want Measure"},
		{"no url", `{"resourceType":"Measure","library":["x"]}`, "no url"},
		{"no library", `{"resourceType":"Measure","url":"u"}`, "no library"},
		{"no group", `{"resourceType":"Measure","url":"u","library":["l"],"scoring":{"coding":[{"code":"proportion"}]}}`, "no group"},
		{"no scoring", `{"resourceType":"Measure","url":"u","library":["l"],"group":[{"population":[]}]}`, "no scoring"},
		{"missing numerator", `{"resourceType":"Measure","url":"u","library":["l"],"scoring":{"coding":[{"code":"proportion"}]},
			"group":[{"population":[{"code":{"coding":[{"code":"initial-population"}]},"criteria":{"language":"text/cql-identifier","expression":"IP"}},
			{"code":{"coding":[{"code":"denominator"}]},"criteria":{"language":"text/cql-identifier","expression":"D"}}]}]}`, "needs a numerator"},
		{"population without expression", `{"resourceType":"Measure","url":"u","library":["l"],"scoring":{"coding":[{"code":"cohort"}]},
			"group":[{"population":[{"code":{"coding":[{"code":"initial-population"}]},"criteria":{"language":"text/cql-identifier"}}]}]}`, "no expression"},
		{"non-CQL criteria", `{"resourceType":"Measure","url":"u","library":["l"],"scoring":{"coding":[{"code":"cohort"}]},
			"group":[{"population":[{"code":{"coding":[{"code":"initial-population"}]},"criteria":{"language":"text/fhirpath","expression":"x"}}]}]}`, "not CQL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(tt.json))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidMeasure)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestParseDefinitionStratifiersAndObservations(t *testing.T) {
	js := `{"resourceType":"Measure","url":"http://x/Measure/m","version":"1","library":["http://x/Library/L"],
	"improvementNotation":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/measure-improvement-notation","code":"increase"}]},
	"group":[{"id":"g1","extension":[{"url":"http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-scoring","valueCodeableConcept":{"coding":[{"code":"continuous-variable"}]}},
	  {"url":"http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-populationBasis","valueCode":"Encounter"}],
	 "population":[
	  {"id":"ip","code":{"coding":[{"code":"initial-population"}]},"criteria":{"language":"text/cql-identifier","expression":"Initial Population"}},
	  {"id":"mp","code":{"coding":[{"code":"measure-population"}]},"criteria":{"language":"text/cql-identifier","expression":"Measure Population"}},
	  {"id":"obs","extension":[{"url":"http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-aggregateMethod","valueCode":"median"},
	    {"url":"http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-criteriaReference","valueString":"mp"}],
	   "code":{"coding":[{"code":"measure-observation"}]},"criteria":{"language":"text/cql-identifier","expression":"Length of Stay"}}],
	 "stratifier":[{"id":"s1","code":{"text":"age"},"criteria":{"language":"text/cql-identifier","expression":"Age Group"}},
	  {"id":"s2","component":[{"code":{"text":"sex"},"criteria":{"language":"text/cql-identifier","expression":"Sex"}},{"code":{"text":"payer"},"criteria":{"language":"text/cql-identifier","expression":"Payer"}}]}]}]}`
	d, err := ParseDefinition([]byte(js))
	require.NoError(t, err)
	assert.Equal(t, "http://x/Measure/m|1", d.Canonical())
	g := d.Groups[0]
	assert.Equal(t, ContinuousVariable, g.Scoring)
	assert.True(t, g.IsEpisodeBased())
	assert.Equal(t, "increase", g.ImprovementNotation, "inherits the measure's notation")
	obs := g.Population(MeasureObservation)
	require.NotNil(t, obs)
	assert.Equal(t, "median", obs.AggregateMethod)
	assert.Equal(t, "mp", obs.CriteriaReference)
	require.Len(t, g.Stratifiers, 2)
	assert.Equal(t, "Age Group", g.Stratifiers[0].Expression)
	require.Len(t, g.Stratifiers[1].Components, 2)
	assert.Equal(t, "Payer", g.Stratifiers[1].Components[1].Expression)
}
