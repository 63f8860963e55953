package gapsapi_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/bulk/synth"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/measure/measuretest"
)

// BenchmarkCareGapsHTTP is the provider portal's request end to end: a
// synthetic population loaded through REST, CMS165 and CMS122 on the
// server, and GET Group/[id]/$care-gaps as CSV over every patient (a
// plain Group), timed from request to the last byte.
func BenchmarkCareGapsHTTP(b *testing.B) {
	const patients = 1000
	e := newEnvLimit(b, patients)
	ctx := context.Background()
	ecqm := filepath.Join(measuretest.SharedDir(b), "ecqm")
	for _, name := range []string{"ControllingHighBloodPressureFHIR", "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR"} {
		rs, err := catalog.ContentResources(ctx, ecqm, name)
		require.NoError(b, err)
		body, err := catalog.TransactionBundle(rs)
		require.NoError(b, err)
		e.post(body)
	}
	sink := &synthSink{e: e}
	sum, err := synth.Generate(ctx, synth.Options{Patients: patients, Seed: 3}, sink)
	require.NoError(b, err)
	sink.flush()
	require.Len(b, sink.patients, patients)
	e.putGroup("population", sink.patients)
	year := sum.Truth.MeasurementPeriod
	q := url.Values{"periodStart": {year + "-01-01"}, "periodEnd": {year + "-12-31"}, "status": {"open-gap", "closed-gap"}, "_format": {"text/csv"}}
	get := func() int {
		res, err := http.Get(e.base + "/Group/population/$care-gaps?" + q.Encode())
		require.NoError(b, err)
		defer res.Body.Close()
		n, err := io.Copy(io.Discard, res.Body)
		require.NoError(b, err)
		require.Equal(b, http.StatusOK, res.StatusCode)
		return int(n)
	}
	get() // compiles the measures
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		get()
	}
	b.ReportMetric(float64(patients*b.N)/time.Since(start).Seconds(), "patients/s")
}
