package measure

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/measures/patientsource"
)

// withStratifiers copies the content of a measure and gives its first
// group the stratifiers given (Measure.group.stratifier JSON).
func withStratifiers(t *testing.T, name string, stratifiers string) (*Measure, string) {
	t.Helper()
	dir := copyContent(t, name)
	f := filepath.Join(dir, "measures", name, "Measure.json")
	raw, err := os.ReadFile(f)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	var strat []any
	require.NoError(t, json.Unmarshal([]byte(stratifiers), &strat))
	m["group"].([]any)[0].(map[string]any)["stratifier"] = strat
	raw, err = json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f, raw, 0o644))
	pkg, err := Content{Dir: dir}.Load(context.Background(), name)
	require.NoError(t, err)
	mm, err := Compile(context.Background(), pkg, elm.Options{})
	require.NoError(t, err)
	return mm, filepath.Join(measuretest.SharedDir(t), "ecqm", "measures", name, "tests")
}

// runAll evaluates every test case and returns the results.
func runAll(t *testing.T, m *Measure, tests string) []*PatientResult {
	t.Helper()
	src, err := patientsource.NewDir(tests)
	require.NoError(t, err)
	period, err := DefaultPeriod(m.Def)
	require.NoError(t, err)
	var out []*PatientResult
	_, err = m.Run(context.Background(), src, RunOptions{Period: period}, func(r *PatientResult) error {
		require.NoError(t, r.Err)
		out = append(out, r)
		return nil
	})
	require.NoError(t, err)
	return out
}

func TestStratifiersPatientBased(t *testing.T) {
	m, tests := withStratifiers(t, cms165, `[
		{"id":"by-sex","code":{"text":"sex"},"criteria":{"language":"text/cql-identifier","expression":"SDE Sex"}},
		{"id":"by-sex-and-sbp","component":[
			{"code":{"text":"sex"},"criteria":{"language":"text/cql-identifier","expression":"SDE Sex"}},
			{"code":{"text":"sbp<140"},"criteria":{"language":"text/cql-identifier","expression":"Has Systolic Blood Pressure Less Than 140"}}]}]`)
	results := runAll(t, m, tests)
	g := &m.Def.Groups[0]
	require.Len(t, g.Stratifiers, 2)
	for si := range g.Stratifiers {
		// Each patient in the initial population lands in exactly one
		// stratum, so strata partition every population.
		for _, r := range results {
			gr := r.Groups[0]
			if gr.Count(InitialPopulation) == 0 {
				assert.Empty(t, gr.Stratifiers)
				continue
			}
			require.Len(t, gr.Stratifiers, 2)
			strata := gr.Stratifiers[si].Strata
			require.Len(t, strata, 1, "patient %s", r.PatientID)
			assert.Equal(t, []string{PatientUnit}, strata[0].Units)
			if si == 0 {
				require.NotNil(t, strata[0].Value.Value)
				sex := strata[0].Value.Value
				if sex.Key != nullValue.Key {
					require.NotEmpty(t, sex.Concept.Coding, "SDE Sex is a Code")
					assert.Contains(t, []string{"M", "F"}, sex.Concept.Coding[0].Code)
				}
			} else {
				require.Len(t, strata[0].Value.Components, 2)
				assert.Contains(t, []string{"true", "false", "null"}, strata[0].Value.Components[1].Value.Key)
			}
		}
	}
	// Supplemental data are evaluated for initial-population patients;
	// race and ethnicity come back as concepts with CDC codes.
	races := 0
	for _, r := range results {
		if r.Groups[0].Count(InitialPopulation) == 0 {
			assert.Empty(t, r.SDE)
			continue
		}
		require.Len(t, r.SDE, 4)
		for _, s := range r.SDE {
			if s.ID == "sde-race" {
				for _, v := range s.Values {
					require.NotEmpty(t, v.Concept.Coding)
					assert.Equal(t, "urn:oid:2.16.840.1.113883.6.238", v.Concept.Coding[0].System)
					races++
				}
			}
		}
	}
	assert.Greater(t, races, 0)
}

func TestStratifierEpisodeMembership(t *testing.T) {
	const cms71 = "CMS71FHIRSTKAnticoagAFFlutter"
	m, tests := withStratifiers(t, cms71, `[
		{"id":"treated","code":{"text":"treated"},"criteria":{"language":"text/cql-identifier","expression":"Numerator"}}]`)
	results := runAll(t, m, tests)
	checked := 0
	for _, r := range results {
		gr := r.Groups[0]
		if gr.Count(InitialPopulation) == 0 {
			continue
		}
		checked++
		units := map[string][]string{}
		for _, s := range gr.Stratifiers[0].Strata {
			units[s.Value.Key] = s.Units
		}
		// A list-of-episodes stratifier splits the episodes in two.
		assert.Equal(t, gr.Count(InitialPopulation), len(units["true"])+len(units["false"]), "patient %s", r.PatientID)
		for _, num := range gr.Populations {
			if num.Code == Numerator {
				for _, u := range num.Members {
					assert.Contains(t, units["true"], u)
				}
			}
		}
	}
	assert.Greater(t, checked, 50)
}

func TestStratifierNotDefined(t *testing.T) {
	dir := copyContent(t, cms165)
	f := filepath.Join(dir, "measures", cms165, "Measure.json")
	raw, err := os.ReadFile(f)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	m["group"].([]any)[0].(map[string]any)["stratifier"] = []any{map[string]any{"criteria": map[string]any{"language": "text/cql-identifier", "expression": "No Such Definition"}}}
	raw, err = json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f, raw, 0o644))
	pkg, err := Content{Dir: dir}.Load(context.Background(), cms165)
	require.NoError(t, err)
	_, err = Compile(context.Background(), pkg, elm.Options{})
	require.ErrorIs(t, err, ErrBadContent)
	assert.Contains(t, err.Error(), `"No Such Definition" is not defined`)
}
