package importjob_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/importjob"
	"github.com/equitas/equitas/bulk/ingest"
	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

func TestSubmissionsExpireOnlyWhenClosedAndJobless(t *testing.T) {
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	jobs, err := job.NewManager(st.KV(), job.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	jobs.Register(importjob.Kind, func(context.Context, *job.Record, string, func(string)) ([]byte, error) { return []byte(`{}`), nil })
	subs := importjob.NewSubmissions(st, jobs)
	ctx := context.Background()
	req := importjob.SubmitRequest{Submitter: "s|1", SubmissionID: "a", ManifestURL: "http://x/m.json", FHIRBaseURL: "http://x"}
	sub, err := subs.Submit(ctx, "c1", nil, "http://y/fhir/bulkfiles", req)
	require.NoError(t, err)
	require.Len(t, sub.Manifests, 1)

	n, err := subs.Expire(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "in progress")
	_, err = subs.Submit(ctx, "c1", nil, "", importjob.SubmitRequest{Submitter: "s|1", SubmissionID: "a", Status: importjob.Completed})
	require.NoError(t, err)
	n, err = subs.Expire(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "its job still exists")
	require.NoError(t, jobs.Cancel(ctx, sub.Manifests[0].JobID))
	time.Sleep(time.Millisecond)
	n, err = subs.Expire(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = subs.Get(ctx, "c1", sub.Key)
	assert.ErrorIs(t, err, importjob.ErrSubmissionNotFound)
}

// TestStopMidLoadUndoesCommittedBatches: a submission stopped while its
// job is still loading (batches committed, the file not finished) waits
// for the job to stop, then deletes what it created and restores what it
// changed.
func TestStopMidLoadUndoesCommittedBatches(t *testing.T) {
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{
		{Op: store.OpPut, Type: "Patient", ID: "p1", Body: []byte(`{"resourceType":"Patient","id":"p1","gender":"male"}`)},
	}})
	require.NoError(t, err)
	v, err := validate.New()
	require.NoError(t, err)
	jobs, err := job.NewManager(st.KV(), job.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	jobs.Register(importjob.Kind, importjob.New(st, v, importjob.Options{Ingest: ingest.Options{BatchSize: 1}}).Run)
	jctx, cancel := context.WithCancel(ctx)
	require.NoError(t, jobs.Start(jctx))
	defer jobs.Wait()
	defer cancel()

	manifest := source(t, map[string]http.HandlerFunc{"Patient": func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"resourceType":"Patient","id":"p1","gender":"female"}
{"resourceType":"Patient","id":"p2"}
{"resourceType":"Patient","id":"p3"}
`)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest of the file never comes
	}})
	subs := importjob.NewSubmissions(st, jobs)
	req := importjob.SubmitRequest{Submitter: "s|1", SubmissionID: "a", ManifestURL: manifest, FHIRBaseURL: "http://x"}
	sub, err := subs.Submit(ctx, "c1", []string{"system/*.cud"}, "http://y/fhir/bulkfiles", req)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := st.Read(ctx, "Patient", "p3")
		return err == nil
	}, 30*time.Second, 10*time.Millisecond, "the first lines are committed")
	rec, err := jobs.Get(ctx, sub.Manifests[0].JobID)
	require.NoError(t, err)
	require.False(t, rec.Done(), "the job is still loading")

	_, err = subs.Submit(ctx, "c1", nil, "", importjob.SubmitRequest{Submitter: "s|1", SubmissionID: "a", Status: importjob.Stopped})
	require.NoError(t, err)
	for _, id := range []string{"p2", "p3"} {
		_, err := st.Read(ctx, "Patient", id)
		assert.ErrorIs(t, err, store.ErrDeleted, id)
	}
	p1, err := st.Read(ctx, "Patient", "p1")
	require.NoError(t, err)
	assert.Equal(t, "male", gjson.GetBytes(p1.Body, "gender").String())
	_, err = jobs.Get(ctx, sub.Manifests[0].JobID)
	assert.ErrorIs(t, err, job.ErrNotFound)
	n := 0
	require.NoError(t, st.KV().Scan(ctx, "bulk/submission-data/", func(string, []byte) error { n++; return nil }))
	assert.Zero(t, n, "the undo records are gone with the undo")
}
