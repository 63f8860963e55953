package measure

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/measures/patientsource"
)

func compileShared(t *testing.T, name string) (*Measure, Content) {
	t.Helper()
	content := Content{Dir: filepath.Join(measuretest.SharedDir(t), "ecqm")}
	pkg, err := content.Load(context.Background(), name)
	require.NoError(t, err)
	m, err := Compile(context.Background(), pkg, elm.Options{})
	require.NoError(t, err)
	return m, content
}

func TestRunDeliversInSourceOrder(t *testing.T) {
	m, content := compileShared(t, cms165)
	templates := loadCases(t, content, cms165)
	period, err := DefaultPeriod(m.Def)
	require.NoError(t, err)
	src := replicated{templates: templates, n: 500}
	var got []string
	st, err := m.Run(context.Background(), src, RunOptions{Period: period, Workers: 4}, func(r *PatientResult) error {
		require.NoError(t, r.Err)
		got = append(got, r.PatientID)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, Stats{Patients: 500}, st)
	var want []string
	require.NoError(t, src.Each(context.Background(), func(p *patientsource.Patient) error {
		want = append(want, p.ID)
		return nil
	}))
	assert.Equal(t, want, got)
}

func TestRunStopsOnSinkErrorAndCancel(t *testing.T) {
	m, content := compileShared(t, cms165)
	templates := loadCases(t, content, cms165)
	period, err := DefaultPeriod(m.Def)
	require.NoError(t, err)
	stop := errors.New("sink full")
	n := 0
	_, err = m.Run(context.Background(), replicated{templates: templates, n: 10_000}, RunOptions{Period: period}, func(*PatientResult) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 10, n, "no results after the sink fails")

	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	_, err = m.Run(ctx, replicated{templates: templates, n: 10_000}, RunOptions{Period: period}, func(*PatientResult) error {
		n++
		if n == 5 {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, n, 10_000)
}

func TestRunReportsSourceErrors(t *testing.T) {
	m, _ := compileShared(t, cms165)
	period, err := DefaultPeriod(m.Def)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "a"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a", "Patient.json"), []byte(`{"resourceType":"Patient","id":"a","birthDate":"1960-01-01"}`), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "b"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b", "Patient.json"), []byte(`{"resourceType":`), 0o644))
	src, err := patientsource.Open(dir)
	require.NoError(t, err)
	var seen []string
	st, err := m.Run(context.Background(), src, RunOptions{Period: period}, func(r *PatientResult) error {
		seen = append(seen, r.PatientID)
		return nil
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "malformed JSON")
	assert.Equal(t, []string{"a"}, seen, "patients before the bad one are delivered")
	assert.Equal(t, 1, st.Patients)
}

func TestSessionBadPatientDataIsAPatientError(t *testing.T) {
	m, _ := compileShared(t, cms165)
	period, err := DefaultPeriod(m.Def)
	require.NoError(t, err)
	p := &patientsource.Patient{ID: "x", Resources: map[string][]json.RawMessage{
		"Patient": {json.RawMessage(`{"resourceType":"Patient","id":"x","birthDate":`)},
	}}
	r := m.NewSession(period).Evaluate(context.Background(), p)
	require.Error(t, r.Err)
	assert.Contains(t, r.Err.Error(), "patient x")
	assert.Empty(t, r.Groups, "a failed patient counts in no population")
}

func TestCacheCompilesOnce(t *testing.T) {
	content := Content{Dir: filepath.Join(measuretest.SharedDir(t), "ecqm")}
	c := NewCache(elm.Options{})
	var wg sync.WaitGroup
	got := make([]*Measure, 4)
	errs := make([]error, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = c.Load(context.Background(), content, cms165)
		}()
	}
	wg.Wait()
	for i := range got {
		require.NoError(t, errs[i])
		assert.Same(t, got[0], got[i])
	}
	assert.Equal(t, 1, c.Len())
	_, err := c.Load(context.Background(), content, "Missing")
	require.ErrorIs(t, err, ErrBadContent)
	assert.Equal(t, 1, c.Len(), "failures are not cached")
}
