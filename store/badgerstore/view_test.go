package badgerstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/store"
)

// TestReadsDuringCommits: readers share the writer's pre-commit view while
// a durable commit is in flight; whatever view they get, a read started
// after a Commit returned sees that commit (read-your-writes), and a later
// read never sees less than an earlier one (monotonic).
func TestReadsDuringCommits(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	ctx := context.Background()
	const writers, rounds = 4, 40
	var committed [writers]atomic.Uint64 // last version each writer saw returned
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 64)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("w%d", w)
			for range rounds {
				res, err := st.Commit(ctx, store.Tx{
					Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: id, Body: []byte(`{"resourceType":"Patient","active":true}`)}},
					KV:     map[string][]byte{"test/" + id: []byte("x")},
				})
				if err != nil {
					errs <- err
					return
				}
				committed[w].Store(res[0].Version)
				// Read-your-writes, through both read paths.
				got, err := st.Read(ctx, "Patient", id)
				if err != nil || got.Version < res[0].Version {
					errs <- fmt.Errorf("read after commit of %s v%d: %v %v", id, res[0].Version, got, err)
					return
				}
				if _, err := st.KV().Get(ctx, "test/"+id); err != nil {
					errs <- fmt.Errorf("kv after commit: %w", err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			last := map[string]uint64{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				w := r % writers
				floor := committed[w].Load()
				id := fmt.Sprintf("w%d", w)
				got, err := st.Read(ctx, "Patient", id)
				if floor == 0 && err != nil {
					continue // not written yet
				}
				if err != nil || got.Version < floor || got.Version < last[id] {
					errs <- fmt.Errorf("reader saw %v (%v); committed %d, seen before %d", got, err, floor, last[id])
					return
				}
				last[id] = got.Version
				r++
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for w := range writers {
		assert.Equal(t, uint64(rounds), committed[w].Load())
	}
	sn, err := st.Snapshot(ctx)
	require.NoError(t, err)
	got, err := sn.Read(ctx, "Patient", "w0")
	require.NoError(t, err)
	assert.Equal(t, uint64(rounds), got.Version, "a snapshot taken after the commits shows them")
	sn.Close()
}
