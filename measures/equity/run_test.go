package equity

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/bulk/synth"
	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/measures/patientsource"
)

var errAttribution = errors.New("attribution index unavailable")

type failingAttributor struct{}

func (failingAttributor) AttributedProvider(context.Context, string, time.Time) (string, error) {
	return "", errAttribution
}

// TestRunSmallPopulation runs the service over a small generated
// population on several workers (go test -race exercises the evaluator)
// and checks its counts against the generator's truth, the CMS165
// correction, the prior period and the outputs.
func TestRunSmallPopulation(t *testing.T) {
	shared := measuretest.SharedDir(t)
	ctx := context.Background()
	dir := t.TempDir()
	sum, err := synth.GenerateDir(ctx, synth.Options{Patients: 300, Seed: 3}, dir)
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	require.NoError(t, err)
	m, err := measure.NewCache(elm.Options{}).Load(ctx, measure.Content{Dir: filepath.Join(shared, "ecqm")}, "ControllingHighBloodPressureFHIR")
	require.NoError(t, err)
	src := patientsource.NewNDJSON(files, patientsource.NDJSONOptions{TempDir: t.TempDir()})
	res, err := Run(ctx, src, []*measure.Measure{m}, RunOptions{PeriodStart: "2025-01-01", PeriodEnd: "2025-12-31",
		PriorStart: "2024-01-01", PriorEnd: "2024-12-31", Workers: 4, SVI: SVITable{"Cook County, IL": 0.9}})
	require.NoError(t, err)
	assert.Equal(t, 300, res.Patients)
	assert.Zero(t, res.Failed)
	require.Len(t, res.Report.Measures, 1)
	mr := res.Report.Measures[0]
	assert.Equal(t, Increase, mr.Input.Direction, "CMS165 is corrected to increase")
	require.Len(t, res.Notes, 1)
	assert.Contains(t, res.Notes[0], "CMS165")
	o := mr.Analyses[0].Overall
	assert.Equal(t, sum.Truth.CMS165.Overall.Denominator, o.Denominator)
	assert.Equal(t, sum.Truth.CMS165.Overall.Numerator, o.Numerator)
	require.Len(t, mr.Analyses, len(DefaultStratifiers()))
	require.NotNil(t, mr.Prior[0], "the prior period was evaluated")
	assert.Positive(t, mr.Prior[0].Overall.Denominator)
	assert.False(t, res.Quality != res.Quality, "quality is computed")
	require.NotNil(t, res.Pool)
	members := 0
	for _, p := range res.Pool.Providers {
		members += p.Members
	}
	assert.Positive(t, members)
	_, err = res.ParametersJSON()
	require.NoError(t, err)

	// A failing attribution lookup (a store error) stops the run with it.
	_, err = Run(ctx, src, []*measure.Measure{m}, RunOptions{PeriodStart: "2025-01-01", PeriodEnd: "2025-12-31", Workers: 3,
		Attribution: failingAttributor{}})
	assert.ErrorIs(t, err, errAttribution)

	_, err = Run(ctx, src, []*measure.Measure{m}, RunOptions{PeriodStart: "2025-12-31", PeriodEnd: "2025-01-01"})
	assert.ErrorIs(t, err, ErrPeriod)
	_, err = Run(ctx, src, nil, RunOptions{PeriodStart: "2025-01-01", PeriodEnd: "2025-12-31"})
	assert.ErrorIs(t, err, ErrNoMeasures)
}
