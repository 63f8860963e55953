package job_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/store/badgerstore"
)

var quiet = slog.New(slog.DiscardHandler)

func openStore(t *testing.T, dir string) *badgerstore.Store {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), dir, badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	return st
}

// start runs a manager until the test ends.
func start(t *testing.T, m *job.Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, m.Start(ctx))
	t.Cleanup(func() { cancel(); m.Wait() })
}

func waitDone(t *testing.T, m *job.Manager, id string) *job.Record {
	t.Helper()
	var rec *job.Record
	require.Eventually(t, func() bool {
		var err error
		rec, err = m.Get(context.Background(), id)
		return err == nil && rec.Done()
	}, 10*time.Second, 5*time.Millisecond)
	return rec
}

func TestJobOutcomes(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	m, err := job.NewManager(st.KV(), job.Options{Dir: t.TempDir(), Logger: quiet})
	require.NoError(t, err)
	m.Register("ok", func(ctx context.Context, rec *job.Record, dir string, progress func(string)) ([]byte, error) {
		progress("halfway")
		require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600))
		return []byte(`{"done":true}`), nil
	})
	m.Register("fails", func(context.Context, *job.Record, string, func(string)) ([]byte, error) {
		return nil, errors.New("source unavailable")
	})
	m.Register("panics", func(context.Context, *job.Record, string, func(string)) ([]byte, error) {
		panic("boom")
	})
	start(t, m)
	tests := []struct {
		kind  string
		state job.State
		err   string
	}{
		{"ok", job.Completed, ""},
		{"fails", job.Failed, "source unavailable"},
		{"panics", job.Failed, "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			rec, err := m.Submit(context.Background(), tc.kind, "c1", "http://x/$export", map[string]int{"a": 1})
			require.NoError(t, err)
			rec = waitDone(t, m, rec.ID)
			assert.Equal(t, tc.state, rec.State)
			assert.Contains(t, rec.Error, tc.err)
			assert.False(t, rec.ExpiresAt.IsZero())
			if tc.state == job.Completed {
				assert.JSONEq(t, `{"done":true}`, string(rec.Result))
				_, err := os.Stat(filepath.Join(m.Dir(rec.ID), "f"))
				assert.NoError(t, err)
			}
		})
	}
	_, err = m.Submit(context.Background(), "unknown", "c1", "", nil)
	assert.ErrorIs(t, err, job.ErrNoRunner)
}

func TestPollCancelAndLimits(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	m, err := job.NewManager(st.KV(), job.Options{Dir: t.TempDir(), MinPoll: time.Hour, MaxPerOwner: 1, Logger: quiet})
	require.NoError(t, err)
	release := make(chan struct{})
	m.Register("slow", func(ctx context.Context, _ *job.Record, dir string, _ func(string)) ([]byte, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return []byte(`{}`), ctx.Err()
	})
	start(t, m)
	defer close(release)
	rec, err := m.Submit(context.Background(), "slow", "c1", "", nil)
	require.NoError(t, err)
	_, err = m.Submit(context.Background(), "slow", "c1", "", nil)
	assert.ErrorIs(t, err, job.ErrTooManyJobs, "one unfinished job per owner")
	_, err = m.Submit(context.Background(), "slow", "c2", "", nil)
	assert.NoError(t, err, "other owners are not limited")

	_, err = m.Poll(context.Background(), rec.ID)
	require.NoError(t, err)
	_, err = m.Poll(context.Background(), rec.ID)
	assert.ErrorIs(t, err, job.ErrPollTooSoon)

	require.NoError(t, m.Cancel(context.Background(), rec.ID))
	_, err = m.Get(context.Background(), rec.ID)
	assert.ErrorIs(t, err, job.ErrNotFound)
	assert.ErrorIs(t, m.Cancel(context.Background(), rec.ID), job.ErrNotFound)
	_, err = os.Stat(m.Dir(rec.ID))
	assert.True(t, os.IsNotExist(err), "files removed")
	_, err = m.Submit(context.Background(), "slow", "c1", "", nil)
	assert.NoError(t, err, "the cancelled job no longer counts")
}

// TestRestartResumesOrFails: an unfinished job is run again after a
// restart, into a clean directory; one that keeps crashing the server is
// failed after MaxAttempts.
func TestRestartResumesOrFails(t *testing.T) {
	dir, files := t.TempDir(), t.TempDir()
	st := openStore(t, dir)
	m, err := job.NewManager(st.KV(), job.Options{Dir: files, Logger: quiet})
	require.NoError(t, err)
	m.Register("x", nil)
	rec, err := m.Submit(context.Background(), "x", "c1", "", nil)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(m.Dir(rec.ID), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(m.Dir(rec.ID), "partial"), []byte("{"), 0o600))
	require.NoError(t, st.Close())

	st = openStore(t, dir)
	defer st.Close()
	m, err = job.NewManager(st.KV(), job.Options{Dir: files, Logger: quiet, MaxAttempts: 2})
	require.NoError(t, err)
	var sawPartial bool
	m.Register("x", func(_ context.Context, _ *job.Record, dir string, _ func(string)) ([]byte, error) {
		_, err := os.Stat(filepath.Join(dir, "partial"))
		sawPartial = err == nil
		return []byte(`{}`), nil
	})
	start(t, m)
	got := waitDone(t, m, rec.ID)
	assert.Equal(t, job.Completed, got.State)
	assert.False(t, sawPartial, "a resumed job starts in an empty directory")
	assert.Equal(t, 1, got.Attempts)
}

func TestExpire(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	// The clock runs ahead by skew; moving it past the TTL keeps the test
	// independent of how long the job and the box take.
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	m, err := job.NewManager(st.KV(), job.WithClock(job.Options{Dir: t.TempDir(), TTL: time.Hour, Logger: quiet}, clock))
	require.NoError(t, err)
	m.Register("ok", func(context.Context, *job.Record, string, func(string)) ([]byte, error) { return []byte(`{}`), nil })
	start(t, m)
	rec, err := m.Submit(context.Background(), "ok", "c1", "", nil)
	require.NoError(t, err)
	waitDone(t, m, rec.ID)
	n, err := m.Expire(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 0, n, "kept within the TTL")
	skew.Store(int64(time.Hour + time.Minute))
	n, err = m.Expire(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = m.Get(context.Background(), rec.ID)
	assert.ErrorIs(t, err, job.ErrNotFound)
}

func TestJobThatNeverFinishesFailsAfterMaxAttempts(t *testing.T) {
	dir, files := t.TempDir(), t.TempDir()
	var id string
	for attempt := 0; attempt < 3; attempt++ {
		st := openStore(t, dir)
		m, err := job.NewManager(st.KV(), job.Options{Dir: files, Logger: quiet, MaxAttempts: 2})
		require.NoError(t, err)
		running := make(chan struct{}, 1)
		m.Register("x", func(ctx context.Context, _ *job.Record, _ string, _ func(string)) ([]byte, error) {
			running <- struct{}{}
			<-ctx.Done() // the server stops mid-job
			return nil, ctx.Err()
		})
		ctx, cancel := context.WithCancel(context.Background())
		require.NoError(t, m.Start(ctx))
		if id == "" {
			rec, err := m.Submit(context.Background(), "x", "c1", "", nil)
			require.NoError(t, err)
			id = rec.ID
		}
		if attempt < 2 {
			<-running
			cancel()
			m.Wait()
			require.NoError(t, st.Close())
			continue
		}
		rec := waitDone(t, m, id)
		assert.Equal(t, job.Failed, rec.State)
		assert.Contains(t, rec.Error, "2 attempts")
		cancel()
		m.Wait()
		require.NoError(t, st.Close())
	}
}

// TestStopWaitsForTheRunner: after Stop the runner has returned, so a job
// that finishes its current step after cancellation changes nothing later.
func TestStopWaitsForTheRunner(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	m, err := job.NewManager(st.KV(), job.Options{Dir: t.TempDir(), Logger: quiet})
	require.NoError(t, err)
	started := make(chan struct{})
	var returned atomic.Bool
	m.Register("slow", func(ctx context.Context, _ *job.Record, dir string, _ func(string)) ([]byte, error) {
		close(started)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // the step in flight when cancelled
		returned.Store(true)
		return nil, ctx.Err()
	})
	start(t, m)
	rec, err := m.Submit(context.Background(), "slow", "c1", "", nil)
	require.NoError(t, err)
	<-started
	require.NoError(t, m.Stop(context.Background(), rec.ID))
	assert.True(t, returned.Load(), "Stop returned before the runner")
	assert.ErrorIs(t, m.Stop(context.Background(), rec.ID), job.ErrNotFound)
}
