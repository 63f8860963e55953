package importjob_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/bulk/importjob"
	"github.com/equitas/equitas/bulk/job"
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
