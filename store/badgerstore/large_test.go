package badgerstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// bigTx builds a transaction of n Observations (about 1 KiB each) for
// patient pid, ids prefix-0..n-1.
func bigTx(prefix, pid string, n int) store.Tx {
	pad := strings.Repeat("x", 800)
	tx := store.Tx{KV: map[string][]byte{"batch/" + prefix: []byte("done")}}
	for i := range n {
		tx.Writes = append(tx.Writes, store.Write{Op: store.OpPut, Type: "Observation", ID: fmt.Sprintf("%s-%d", prefix, i),
			Body: []byte(fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"c%d"}]},"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2021-01-%02d","note":[{"text":%q}]}`, i%50, pid, i%28+1, pad))})
	}
	return tx
}

func txBytes(tx store.Tx) int64 {
	var n int64
	for _, w := range tx.Writes {
		n += int64(len(w.Body))
	}
	return n
}

// present counts how many of the transaction's resources are readable.
func present(t *testing.T, st store.Store, prefix string, n int) int {
	t.Helper()
	c := 0
	for i := range n {
		_, err := st.Read(context.Background(), "Observation", fmt.Sprintf("%s-%d", prefix, i))
		if err == nil {
			c++
		} else {
			require.ErrorIs(t, err, store.ErrNotFound)
		}
	}
	return c
}

func TestLargeTransaction(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	defer func() { _ = st.Close() }()
	const n = 6000
	tx := bigTx("big", "p1", n)
	require.Greater(t, txBytes(tx)*2, st.DB().MaxBatchSize(), "the transaction must exceed one badger transaction")

	res, err := st.Commit(ctx, tx)
	require.NoError(t, err)
	require.Len(t, res, n)
	assert.Equal(t, n, present(t, st, "big", n))
	counts, err := st.Counts(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(n), counts["Observation"])
	comp := 0
	require.NoError(t, st.Compartment(ctx, "p1", []string{"Observation"}, func(*store.Resource) error { comp++; return nil }))
	assert.Equal(t, n, comp)
	sr, err := st.Search(ctx, store.Query{Type: "Observation", Total: true, Params: []store.Param{{Name: "code", Values: []string{"http://loinc.org|c7"}}}})
	require.NoError(t, err)
	assert.Equal(t, n/50, sr.Total)

	// A large transaction whose last write conflicts leaves nothing behind.
	tx2 := bigTx("big2", "p2", n)
	tx2.Writes = append(tx2.Writes, store.Write{Op: store.OpPut, Type: "Observation", ID: "big-0", IfMatch: 99,
		Body: []byte(`{"resourceType":"Observation"}`)})
	_, err = st.Commit(ctx, tx2)
	require.ErrorIs(t, err, store.ErrVersionConflict)
	assert.Zero(t, present(t, st, "big2", n))
	_, err = st.KV().Get(ctx, "batch/big2")
	assert.ErrorIs(t, err, store.ErrNotFound)

	// Readers during a large commit see all of it or none of it.
	tx3 := bigTx("big3", "p3", n)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var torn []int
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c := 0
			err := st.Compartment(ctx, "p3", []string{"Observation"}, func(*store.Resource) error { c++; return nil })
			if err == nil && c != 0 && c != n {
				mu.Lock()
				torn = append(torn, c)
				mu.Unlock()
			}
		}
	}()
	_, err = st.Commit(ctx, tx3)
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	assert.Empty(t, torn, "a reader saw part of a transaction")
}

func TestLargeTransactionCrash(t *testing.T) {
	ctx := context.Background()
	const n = 4000
	tests := []struct {
		point    string
		wantSeen bool
	}{
		{"staged", false},      // died before the commit record: never happened
		{"committed", true},    // died after the commit record: finished on reopen
		{"half-applied", true}, // died while applying: finished on reopen
	}
	for _, tc := range tests {
		t.Run(tc.point, func(t *testing.T) {
			dir := t.TempDir()
			st := openStore(t, dir)
			_, err := st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: "p1", Body: []byte(`{"resourceType":"Patient"}`)}}})
			require.NoError(t, err)
			badgerstore.SetCrashPoint(st, tc.point)
			_, err = st.Commit(ctx, bigTx("c", "p1", n))
			require.Error(t, err)
			require.NoError(t, st.Close())

			st = openStore(t, dir)
			defer func() { _ = st.Close() }()
			want := 0
			if tc.wantSeen {
				want = n
			}
			assert.Equal(t, want, present(t, st, "c", n))
			counts, err := st.Counts(ctx)
			require.NoError(t, err)
			assert.Equal(t, int64(want), counts["Observation"])
			_, err = st.KV().Get(ctx, "batch/c")
			if tc.wantSeen {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, store.ErrNotFound)
			}
			// The store keeps working and the next commit is a new version.
			res, err := st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Observation", ID: "c-0", Body: []byte(`{"resourceType":"Observation"}`)}}})
			require.NoError(t, err)
			if tc.wantSeen {
				assert.Equal(t, uint64(2), res[0].Version)
			} else {
				assert.Equal(t, uint64(1), res[0].Version)
			}
		})
	}
}

// TestKillDurability runs a writer in a child process, kills it with
// SIGKILL mid-stream and checks that every acknowledged commit survived and
// no large transaction is torn.
func TestKillDurability(t *testing.T) {
	if os.Getenv("EQUITAS_STORE_CHILD") != "" {
		childWriter(os.Getenv("EQUITAS_STORE_CHILD"))
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillDurability$")
	cmd.Env = append(os.Environ(), "EQUITAS_STORE_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // never leave the child behind
	acked := map[string]bool{}
	bigAcked := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "ok":
			acked[f[1]] = true
		case "big":
			bigAcked[f[1]] = true
		}
		if len(acked) >= 400 && len(bigAcked) >= 1 {
			break
		}
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.GreaterOrEqual(t, len(acked), 400, "child wrote too little")

	st := openStore(t, dir)
	defer func() { _ = st.Close() }()
	ctx := context.Background()
	for id := range acked {
		_, err := st.Read(ctx, "Patient", id)
		assert.NoError(t, err, "acknowledged %s lost", id)
	}
	for k := 0; k < 50; k++ {
		prefix := "b" + strconv.Itoa(k)
		c := present(t, st, prefix, 3000)
		assert.True(t, c == 0 || c == 3000, "transaction %s torn: %d of 3000 present", prefix, c)
		if bigAcked[prefix] {
			assert.Equal(t, 3000, c, "acknowledged transaction %s lost", prefix)
		}
	}
}

func childWriter(dir string) {
	st, err := badgerstore.Open(context.Background(), dir, badgerstore.Options{MemTableSize: 16 << 20})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	var mu sync.Mutex
	say := func(s string) { mu.Lock(); fmt.Println(s); mu.Unlock() }
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				_, err := st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: id, Body: []byte(`{"resourceType":"Patient"}`)}}})
				if err == nil {
					say("ok " + id)
				}
			}
		}()
	}
	for k := 0; k < 50; k++ {
		prefix := "b" + strconv.Itoa(k)
		if _, err := st.Commit(ctx, bigTx(prefix, "p1", 3000)); err == nil {
			say("big " + prefix)
		}
	}
	time.Sleep(time.Hour)
}

// TestReindexOnVersionChange: a store whose index layout marker differs is
// reindexed on Open, giving the same search answers.
func TestReindexOnVersionChange(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	_, err := st.Commit(ctx, store.Tx{Writes: population(5, 30, 10)})
	require.NoError(t, err)
	q := store.Query{Type: "Observation", Total: true, Params: []store.Param{{Name: "code", Values: []string{"http://loinc.org|718-7"}}}}
	before, err := st.Search(ctx, q)
	require.NoError(t, err)
	require.Positive(t, before.Total)
	badgerstore.DropIndexes(st, "0")
	gone, err := st.Search(ctx, q)
	require.NoError(t, err)
	require.Zero(t, gone.Total, "indexes dropped")
	require.NoError(t, st.Close())

	st = openStore(t, dir)
	defer func() { _ = st.Close() }()
	after, err := st.Search(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, before.Total, after.Total)
	assert.Equal(t, len(before.Resources), len(after.Resources))
	n := 0
	require.NoError(t, st.Compartment(ctx, "pat00003", nil, func(*store.Resource) error { n++; return nil }))
	assert.Equal(t, 11, n)
}

func TestRunGCAndOptions(t *testing.T) {
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{NumMemtables: 2, GCInterval: 10 * time.Millisecond, MemTableSize: 8 << 20})
	require.NoError(t, err)
	_, err = st.Commit(context.Background(), bigTx("gc", "p1", 200))
	require.NoError(t, err)
	time.Sleep(30 * time.Millisecond) // let the GC loop run at least once
	require.NoError(t, st.RunGC())
	require.NoError(t, st.Close())
	assert.ErrorIs(t, st.RunGC(), store.ErrClosed)
}
