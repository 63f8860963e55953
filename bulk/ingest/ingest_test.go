package ingest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/ingest"
	"github.com/equitas/equitas/bulk/synth"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

func openStore(t testing.TB) *badgerstore.Store {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

func newLoader(t testing.TB, st store.Store, opts ingest.Options) *ingest.Loader {
	t.Helper()
	v, err := validate.New()
	require.NoError(t, err)
	return ingest.New(st, v, opts)
}

const (
	goodPatient = `{"resourceType":"Patient","id":"extra-1","gender":"female","birthDate":"1970-01-01"}`
	goodObs     = `{"resourceType":"Observation","id":"extra-2","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/extra-1"}}`
)

func TestLoadPopulationWithBadLines(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	gen, err := synth.GenerateDir(ctx, synth.Options{Patients: 40, Seed: 5}, dir)
	require.NoError(t, err)
	bad := strings.Join([]string{
		goodPatient,
		`{"resourceType":"Patient","id":"broken",`,                           // 2: malformed JSON
		`{"resourceType":"Observation","id":"nostatus","code":{"text":"x"}}`, // 3: missing required status
		``, // 4: blank, skipped
		`{"resourceType":"Patient","gender":"male"}`,                          // 5: no id
		`{"resourceType":"Patient","id":"bad-date","birthDate":"1987-13-45"}`, // 6: invalid date
		goodObs, // 7
		"",
	}, "\n")
	badFile := filepath.Join(dir, "zz-bad.ndjson")
	require.NoError(t, os.WriteFile(badFile, []byte(bad), 0o644))

	st := openStore(t)
	var reported []string
	l := newLoader(t, st, ingest.Options{BatchSize: 64, OnError: func(le *ingest.LineError) { reported = append(reported, le.Error()) }})
	sum, err := l.LoadPaths(ctx, dir)
	require.NoError(t, err)

	assert.EqualValues(t, 4, sum.Failed)
	require.Len(t, sum.Errors, 4)
	wantLines := []int64{2, 3, 5, 6}
	for i, le := range sum.Errors {
		assert.Equal(t, badFile, le.File)
		assert.Equal(t, wantLines[i], le.Line)
		assert.True(t, strings.HasPrefix(reported[i], fmt.Sprintf("%s:%d: ", badFile, wantLines[i])), reported[i])
	}
	assert.ErrorIs(t, sum.Errors[2].Err, ingest.ErrNoID)
	assert.Contains(t, sum.Errors[1].Error(), "status")

	// Everything else is stored: the generated population plus the two
	// good lines of the bad file.
	counts, err := st.Counts(ctx)
	require.NoError(t, err)
	for typ, n := range gen.Resources {
		want := n
		if typ == "Patient" || typ == "Observation" {
			want++
		}
		assert.Equal(t, want, counts[typ], typ)
		assert.Equal(t, want, sum.Written[typ], typ)
	}
	assert.Equal(t, gen.Total()+2, sum.Loaded())
	assert.Equal(t, gen.Total()+2+4, sum.Read)
	_, err = st.Read(ctx, "Patient", "broken")
	assert.ErrorIs(t, err, store.ErrNotFound)

	// Re-import: nothing new, every resource unchanged, one version each;
	// only the lines that are not stored go through the validator.
	v, err := validate.New()
	require.NoError(t, err)
	cv := &countingValidator{v: v}
	again, err := ingest.New(st, cv, ingest.Options{}).LoadPaths(ctx, dir)
	require.NoError(t, err)
	assert.EqualValues(t, 4, cv.calls.Load())
	assert.Empty(t, again.Written)
	assert.Equal(t, gen.Total()+2, again.Loaded())
	assert.EqualValues(t, 4, again.Failed)
	hist, err := st.History(ctx, store.HistoryQuery{Type: "Patient", ID: "extra-1"})
	require.NoError(t, err)
	assert.Len(t, hist, 1)
	after, err := st.Counts(ctx)
	require.NoError(t, err)
	assert.Equal(t, counts, after)
}

type countingValidator struct {
	v     ingest.Validator
	calls atomic.Int64
}

func (c *countingValidator) Resource(body []byte) (string, string, error) {
	c.calls.Add(1)
	return c.v.Resource(body)
}

func TestReimportChangedLine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := filepath.Join(dir, "p.ndjson")
	st := openStore(t)
	require.NoError(t, os.WriteFile(f, []byte(goodPatient+"\n"), 0o644))
	_, err := newLoader(t, st, ingest.Options{}).LoadPaths(ctx, dir)
	require.NoError(t, err)
	// Same id, a changed body, then the stored body again: the last line
	// wins even though it equals what was stored before the load.
	changed := strings.Replace(goodPatient, "female", "male", 1)
	invalid := strings.Replace(goodPatient, `"1970-01-01"`, `"1970-13-01"`, 1)
	require.NoError(t, os.WriteFile(f, []byte(changed+"\n"+goodPatient+"\n"+invalid+"\n"), 0o644))
	sum, err := newLoader(t, st, ingest.Options{Workers: 3}).LoadPaths(ctx, dir)
	require.NoError(t, err)
	assert.EqualValues(t, 1, sum.Failed)
	r, err := st.Read(ctx, "Patient", "extra-1")
	require.NoError(t, err)
	assert.EqualValues(t, 3, r.Version)
	assert.Equal(t, "female", gjson.GetBytes(r.Body, "gender").String())
}

func TestLaterLineWins(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lines := []string{
		`{"resourceType":"Patient","id":"dup","gender":"female"}`,
		`{"resourceType":"Patient","id":"other","gender":"male"}`,
		`{"resourceType":"Patient","id":"dup","gender":"male"}`,
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.ndjson"), []byte(strings.Join(lines, "\n")), 0o644))
	st := openStore(t)
	sum, err := newLoader(t, st, ingest.Options{Workers: 4}).LoadPaths(ctx, dir)
	require.NoError(t, err)
	assert.EqualValues(t, 3, sum.Written["Patient"])
	r, err := st.Read(ctx, "Patient", "dup")
	require.NoError(t, err)
	assert.EqualValues(t, 2, r.Version)
	assert.Equal(t, "male", gjson.GetBytes(r.Body, "gender").String())
}

func TestBundles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t)
	// Something for the Bundle to delete.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.ndjson"), []byte(`{"resourceType":"Patient","id":"gone"}`), 0o644))
	bundle := `{
  "resourceType": "Bundle",
  "type": "transaction",
  "entry": [
    {"fullUrl": "urn:uuid:6f1c2a52-8d0e-4a5b-9a55-0a4f1e2b3c4d",
     "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:6f1c2a52-8d0e-4a5b-9a55-0a4f1e2b3c4d"}]},
     "request": {"method": "POST", "url": "Patient"}},
    {"fullUrl": "urn:uuid:0b8e6a3e-3d5e-4f43-9e0b-1c2d3e4f5a6b",
     "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "bp"},
                  "subject": {"reference": "urn:uuid:6f1c2a52-8d0e-4a5b-9a55-0a4f1e2b3c4d"}},
     "request": {"method": "POST", "url": "Observation"}},
    {"resource": {"resourceType": "Observation", "id": "bad", "code": {"text": "no status"}},
     "request": {"method": "PUT", "url": "Observation/bad"}},
    {"request": {"method": "DELETE", "url": "Patient/gone"}},
    {"resource": {"resourceType": "Condition", "code": {"text": "x"}, "subject": {"reference": "Patient/6f1c2a52-8d0e-4a5b-9a55-0a4f1e2b3c4d"}},
     "request": {"method": "PUT", "url": "Condition/c1"}}
  ]
}`
	bfile := filepath.Join(dir, "b.json")
	require.NoError(t, os.WriteFile(bfile, []byte(bundle), 0o644))
	// A plain resource in a .json file.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "c.json"), []byte(goodPatient), 0o644))

	sum, err := newLoader(t, st, ingest.Options{}).LoadPaths(ctx, dir)
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.Failed, "%v", sum.Errors)
	assert.Equal(t, 2, sum.Errors[0].Entry)
	assert.Contains(t, sum.Errors[0].Error(), bfile+": Bundle.entry[2]: ")
	assert.EqualValues(t, 1, sum.Deleted["Patient"])
	assert.EqualValues(t, 3, sum.Written["Patient"]) // gone, the bundle's patient, extra-1
	assert.EqualValues(t, 1, sum.Written["Condition"])

	obs, err := st.Read(ctx, "Observation", "0b8e6a3e-3d5e-4f43-9e0b-1c2d3e4f5a6b")
	require.NoError(t, err)
	assert.Equal(t, "Patient/6f1c2a52-8d0e-4a5b-9a55-0a4f1e2b3c4d", gjson.GetBytes(obs.Body, "subject.reference").String())
	p, err := st.Read(ctx, "Patient", "6f1c2a52-8d0e-4a5b-9a55-0a4f1e2b3c4d")
	require.NoError(t, err)
	// An identifier that happens to be a urn:uuid is data, not a reference.
	assert.Equal(t, "urn:uuid:6f1c2a52-8d0e-4a5b-9a55-0a4f1e2b3c4d", gjson.GetBytes(p.Body, "identifier.0.value").String())
	_, err = st.Read(ctx, "Condition", "c1")
	require.NoError(t, err)
	_, err = st.Read(ctx, "Patient", "gone")
	assert.ErrorIs(t, err, store.ErrDeleted)
	_, err = st.Read(ctx, "Patient", "extra-1")
	require.NoError(t, err)
}

func TestSourceLimits(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	dir := t.TempDir()
	long := `{"resourceType":"Patient","id":"long","name":[{"text":"` + strings.Repeat("a", 5000) + `"}]}`
	f := filepath.Join(dir, "Patient.ndjson")
	require.NoError(t, os.WriteFile(f, []byte(goodPatient+"\n"+long+"\n"+goodObs+"\n"), 0o644))
	srcs, err := ingest.Files(f)
	require.NoError(t, err)
	srcs[0].Type = "Patient"
	sum, err := newLoader(t, st, ingest.Options{MaxLineBytes: 1024}).Load(ctx, srcs...)
	require.NoError(t, err)
	require.EqualValues(t, 2, sum.Failed)
	assert.ErrorIs(t, sum.Errors[0].Err, ingest.ErrTooLong)
	assert.EqualValues(t, 2, sum.Errors[0].Line)
	assert.ErrorIs(t, sum.Errors[1].Err, ingest.ErrWrongType)
	assert.EqualValues(t, 3, sum.Errors[1].Line)
	assert.EqualValues(t, 1, sum.Written["Patient"])
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	_, err := synth.GenerateDir(context.Background(), synth.Options{Patients: 100, Seed: 1}, dir)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = newLoader(t, openStore(t), ingest.Options{}).LoadPaths(ctx, dir)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestMissingPath(t *testing.T) {
	_, err := ingest.Files(filepath.Join(t.TempDir(), "nope"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestOnWritten checks the new versions a load reports: created
// resources, new versions of stored ones, and nothing for unchanged lines.
func TestOnWritten(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := filepath.Join(dir, "p.ndjson")
	st := openStore(t)
	load := func(lines ...string) []ingest.Written {
		t.Helper()
		require.NoError(t, os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
		var got []ingest.Written
		_, err := newLoader(t, st, ingest.Options{BatchSize: 1, OnWritten: func(w []ingest.Written) error {
			got = append(got, w...)
			return nil
		}}).LoadPaths(ctx, dir)
		require.NoError(t, err)
		return got
	}
	changed := strings.Replace(goodPatient, "female", "male", 1)
	for _, tc := range []struct {
		name  string
		lines []string
		want  []ingest.Written
	}{
		{"new resources are created", []string{goodPatient, goodObs},
			[]ingest.Written{{Type: "Patient", ID: "extra-1", Version: 1, Created: true}, {Type: "Observation", ID: "extra-2", Version: 1, Created: true}}},
		{"unchanged lines are not reported", []string{goodPatient, goodObs}, nil},
		{"a changed line is a new version", []string{changed, goodObs},
			[]ingest.Written{{Type: "Patient", ID: "extra-1", Version: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, load(tc.lines...))
		})
	}
	t.Run("an error stops the load", func(t *testing.T) {
		require.NoError(t, os.WriteFile(f, []byte(goodPatient+"\n"), 0o644))
		boom := fmt.Errorf("boom")
		_, err := newLoader(t, st, ingest.Options{OnWritten: func([]ingest.Written) error { return boom }}).LoadPaths(ctx, dir)
		require.ErrorIs(t, err, boom)
	})
}
