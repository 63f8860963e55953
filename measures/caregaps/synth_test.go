package caregaps

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/synth"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

const (
	cms165 = "ControllingHighBloodPressureFHIR"
	cms122 = "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR"
)

// storeSink commits generated resources to a store in batches.
type storeSink struct {
	ctx context.Context
	st  store.Store
	tx  store.Tx
}

func (s *storeSink) Write(typ string, line []byte) error {
	body := append([]byte(nil), line...)
	s.tx.Writes = append(s.tx.Writes, store.Write{Op: store.OpPut, Type: typ, ID: gjson.GetBytes(body, "id").String(), Body: body})
	if len(s.tx.Writes) >= 2000 {
		return s.flush()
	}
	return nil
}

func (s *storeSink) flush() error {
	if len(s.tx.Writes) == 0 {
		return nil
	}
	_, err := s.st.Commit(s.ctx, s.tx)
	s.tx = store.Tx{}
	return err
}

// synthetic is a store holding a generated population and the CMS165 and
// CMS122 measure packages, with a Service over it.
type synthetic struct {
	svc   *Service
	truth *synth.Truth
	ids   []string
	req   *Request
}

func newSynthetic(tb testing.TB, patients int) *synthetic {
	tb.Helper()
	ctx := context.Background()
	ecqm := filepath.Join(measuretest.SharedDir(tb), "ecqm")
	st, err := badgerstore.Open(ctx, tb.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = st.Close() })
	sink := &storeSink{ctx: ctx, st: st}
	sum, err := synth.Generate(ctx, synth.Options{Patients: patients, Seed: 7}, sink)
	require.NoError(tb, err)
	require.NoError(tb, sink.flush())
	require.NoError(tb, catalog.LoadDir(ctx, st, ecqm, cms165, cms122))
	quiet := slog.New(slog.DiscardHandler)
	svc := New(st, catalog.New(st, catalog.Options{Logger: quiet}), Options{Logger: quiet})
	var ids []string
	require.NoError(tb, st.Scan(ctx, "Patient", time.Time{}, func(r *store.Resource) error {
		ids = append(ids, r.ID)
		return nil
	}))
	year := sum.Truth.MeasurementPeriod
	req, err := ParseRequest(url.Values{"periodStart": {year + "-01-01"}, "periodEnd": {year + "-12-31"},
		"organization": {"Organization/any"}, "status": {"open-gap", "closed-gap"}})
	require.NoError(tb, err)
	return &synthetic{svc: svc, truth: sum.Truth, ids: ids, req: req}
}

// TestSyntheticTruth: on a generated population whose measure results are
// known, open and closed gaps equal what the planted data implies:
// CMS165 (higher is better, as corrected) closes a gap in the numerator;
// CMS122 (inverse) opens one there.
func TestSyntheticTruth(t *testing.T) {
	s := newSynthetic(t, 400)
	ctx := context.Background()
	ms, err := s.svc.SelectMeasures(ctx, s.req)
	require.NoError(t, err)
	require.Len(t, ms, 2)
	count := map[string]map[measure.GapStatus]int{}
	st, err := s.svc.Run(ctx, s.req, ms, s.ids, func(pg *PatientGaps) error {
		for _, mg := range pg.Measures {
			require.NoError(t, mg.Result.Err)
			if count[mg.Measure.ID] == nil {
				count[mg.Measure.ID] = map[measure.GapStatus]int{}
			}
			for _, g := range mg.Groups {
				count[mg.Measure.ID][g.Status]++
			}
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, len(s.ids), st.Patients)
	assert.Zero(t, st.Failed)
	bp, a1c := s.truth.CMS165.Overall, s.truth.CMS122.Overall
	require.Positive(t, bp.Denominator)
	require.Positive(t, a1c.Denominator)
	assert.Equal(t, bp.Numerator, count[cms165][measure.ClosedGap], "CMS165 closed = numerator")
	assert.Equal(t, bp.Denominator-bp.Numerator, count[cms165][measure.OpenGap], "CMS165 open = denominator − numerator")
	assert.Equal(t, a1c.Numerator, count[cms122][measure.OpenGap], "CMS122 open = numerator (inverse)")
	assert.Equal(t, a1c.Denominator-a1c.Numerator, count[cms122][measure.ClosedGap], "CMS122 closed = denominator − numerator")
	t.Logf("CMS165 %v (truth %+v); CMS122 %v (truth %+v)", count[cms165], bp, count[cms122], a1c)
}

// BenchmarkCareGaps measures population $care-gaps (CMS165 and CMS122,
// open and closed gaps, gaps documents written as NDJSON) on a generated
// population.
func BenchmarkCareGaps(b *testing.B) {
	const patients = 2000
	s := newSynthetic(b, patients)
	ctx := context.Background()
	ms, err := s.svc.SelectMeasures(ctx, s.req)
	require.NoError(b, err)
	plan := &Plan{Request: s.req, Measures: ms, Patients: s.ids}
	// One untimed pass compiles the measures and lets the store settle
	// after the bulk load (its compactions would otherwise share the cores
	// with the timed passes).
	_, err = s.svc.WriteNDJSON(ctx, plan, "http://x/fhir", io.Discard)
	require.NoError(b, err)
	b.ResetTimer()
	start := time.Now()
	var docs int
	for i := 0; i < b.N; i++ {
		sum, err := s.svc.WriteNDJSON(ctx, plan, "http://x/fhir", io.Discard)
		require.NoError(b, err)
		docs = sum.Documents
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(patients*b.N)/el, "patients/s")
	b.ReportMetric(float64(docs*b.N)/el, "documents/s")
}
