package measure

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/measures/patientsource"
)

// cvContent builds a measure package around testdata/CVTest.elm.json: a
// continuous-variable, Encounter-based measure whose observation
// ("Length Of Stay") and stratifier ("Stay Type") are functions of the
// episode, so both are called per encounter.
func cvContent(t *testing.T) Content {
	t.Helper()
	shared := measuretest.SharedDir(t)
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "libraries"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "measures", "CVTest"), 0o755))
	helpers, err := os.ReadFile(filepath.Join(shared, "ecqm", "libraries", "FHIRHelpers.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "libraries", "FHIRHelpers.json"), helpers, 0o644))
	elmJSON, err := os.ReadFile(filepath.Join("testdata", "CVTest.elm.json"))
	require.NoError(t, err)
	lib, err := json.Marshal(map[string]any{
		"resourceType": "Library", "id": "CVTest", "url": "http://example.org/Library/CVTest", "name": "CVTest", "version": "1.0.0",
		"status": "draft", "content": []any{map[string]any{"contentType": "application/elm+json", "data": base64.StdEncoding.EncodeToString(elmJSON)}},
	})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "libraries", "CVTest.json"), lib, 0o644))
	measureJSON, err := os.ReadFile(filepath.Join("testdata", "CVTest.Measure.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "measures", "CVTest", "Measure.json"), measureJSON, 0o644))
	return Content{Dir: dir}
}

// encounter gives millisecond-precision bounds: with second precision the
// engine (at 637f0ce) returns "days between" as an uncertainty interval
// (see /work/findings/measure.md).
func encounter(id, status string, days int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"resourceType":"Encounter","id":%q,"status":%q,"period":{"start":"2025-03-01T08:00:00.000Z","end":"2025-03-%02dT08:00:00.000Z"}}`, id, status, 1+days))
}

func TestContinuousVariableWithEpisodeFunctions(t *testing.T) {
	ctx := context.Background()
	pkg, err := cvContent(t).Load(ctx, "CVTest")
	require.NoError(t, err)
	m, err := Compile(ctx, pkg, elm.Options{})
	require.NoError(t, err)
	period, err := DefaultPeriod(m.Def)
	require.NoError(t, err)

	patients := []*patientsource.Patient{
		{ID: "p1", Resources: map[string][]json.RawMessage{
			"Patient":   {json.RawMessage(`{"resourceType":"Patient","id":"p1"}`)},
			"Encounter": {encounter("e1", "finished", 2), encounter("e2", "finished", 10), encounter("e3", "cancelled", 3)},
		}},
		{ID: "p2", Resources: map[string][]json.RawMessage{
			"Patient":   {json.RawMessage(`{"resourceType":"Patient","id":"p2"}`)},
			"Encounter": {encounter("e4", "finished", 4)},
		}},
		{ID: "p3", Resources: map[string][]json.RawMessage{"Patient": {json.RawMessage(`{"resourceType":"Patient","id":"p3"}`)}}},
	}
	sess := m.NewSession(period)
	var results []*PatientResult
	for _, p := range patients {
		r := sess.Evaluate(ctx, p)
		require.NoError(t, r.Err)
		results = append(results, r)
	}
	g := &m.Def.Groups[0]
	p1 := results[0].Groups[0]
	assert.Equal(t, 3, p1.Count(InitialPopulation))
	assert.Equal(t, 3, p1.Count(MeasurePopulation))
	assert.Equal(t, 1, p1.Count(MeasurePopulationExclusion))
	obs := p1.Populations[3]
	require.Equal(t, MeasureObservation, obs.Code)
	assert.ElementsMatch(t, []Observation{{Unit: "Encounter/e1", Value: 2}, {Unit: "Encounter/e2", Value: 10}}, obs.Observations,
		"one observation per episode of the measure population, none for the excluded one")

	// The stratifier function places each episode by its own length.
	strata := map[string][]string{}
	for _, s := range p1.Stratifiers[0].Strata {
		strata[s.Value.Key] = s.Units
	}
	assert.ElementsMatch(t, []string{"Encounter/e2"}, strata["text:long"])
	assert.ElementsMatch(t, []string{"Encounter/e1", "Encounter/e3"}, strata["text:short"])

	assert.Equal(t, 0, results[2].Groups[0].Count(InitialPopulation))

	// Scores: the median over all observed episodes (2, 10, 4) and per stratum.
	score, ok := Score(g, func(code string) int {
		n := 0
		for _, r := range results {
			n += r.Groups[0].Count(code)
		}
		return n
	}, func(i int) []float64 {
		var v []float64
		for _, r := range results {
			for _, o := range r.Groups[0].Populations[i].Observations {
				v = append(v, o.Value)
			}
		}
		return v
	})
	require.True(t, ok)
	assert.InDelta(t, 4.0, score, 1e-9)
}
