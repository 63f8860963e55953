package attribution

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJobs(t *testing.T) {
	ctx := context.Background()
	st := listOf(t, StatusOpen)
	// A job a previous process left running.
	stale, err := json.Marshal(&Job{ID: "old", Status: JobRunning, Method: Hybrid, AsOf: "2026-01-01"})
	require.NoError(t, err)
	require.NoError(t, st.KV().Put(ctx, kvJob+"old", stale))

	js, err := NewJobs(ctx, NewLists(st), nil)
	require.NoError(t, err)
	defer js.Close()
	old, err := js.Get(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, JobFailed, old.Status)
	assert.Contains(t, old.Error, "restart")

	_, err = js.Start(ctx, RunOptions{Options: Options{Method: "sideways", AsOf: day("2026-02-01")}})
	assert.Error(t, err)
	_, err = js.Start(ctx, RunOptions{Options: Options{Method: Prospective}})
	assert.Error(t, err, "as-of date required")

	j, err := js.Start(ctx, RunOptions{Options: Options{Method: Prospective, AsOf: day("2026-02-01")}, Audit: Audit{Who: "tester"}})
	require.NoError(t, err)
	assert.Equal(t, JobRunning, j.Status)
	require.Eventually(t, func() bool {
		got, err := js.Get(ctx, j.ID)
		return err == nil && got.Status != JobRunning
	}, 30*time.Second, 10*time.Millisecond)
	got, err := js.Get(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, JobComplete, got.Status, got.Error)
	assert.Equal(t, 2, got.Result.Patients)
	require.Len(t, got.Result.Groups, 1)
	assert.EqualValues(t, 2, got.Result.Groups[0].Version)
	assert.Equal(t, "tester", got.Who)

	require.NoError(t, js.Cancel(ctx, j.ID), "a finished job is forgotten")
	_, err = js.Get(ctx, j.ID)
	assert.ErrorIs(t, err, ErrNoJob)
	assert.ErrorIs(t, js.Cancel(ctx, "nope"), ErrNoJob)
}
