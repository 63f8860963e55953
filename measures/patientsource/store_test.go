package patientsource

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// TestStoreReadsInParallelInOrder: with several readers, patients still
// come out in id order (or the given order), each with its compartment.
func TestStoreReadsInParallelInOrder(t *testing.T) {
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	var writes []store.Write
	var ids []string
	for i := 0; i < 300; i++ {
		id := fmt.Sprintf("p%04d", i)
		ids = append(ids, id)
		writes = append(writes, store.Write{Op: store.OpPut, Type: "Patient", ID: id, Body: []byte(`{"resourceType":"Patient","id":"` + id + `"}`)})
		for j := 0; j < i%4; j++ {
			oid := fmt.Sprintf("%s-o%d", id, j)
			writes = append(writes, store.Write{Op: store.OpPut, Type: "Observation", ID: oid,
				Body: []byte(`{"resourceType":"Observation","id":"` + oid + `","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/` + id + `"}}`)})
		}
	}
	_, err = st.Commit(ctx, store.Tx{Writes: writes})
	require.NoError(t, err)

	for _, readers := range []int{1, 2, 7} {
		t.Run(fmt.Sprint("readers=", readers), func(t *testing.T) {
			src := NewStore(st)
			src.Readers = readers
			var got []string
			require.NoError(t, src.Each(ctx, func(p *Patient) error {
				got = append(got, p.ID)
				var n int
				fmt.Sscanf(p.ID, "p%d", &n)
				assert.Len(t, p.Resources["Observation"], n%4, p.ID)
				return nil
			}))
			assert.Equal(t, ids, got)

			// A given population keeps its order; unknown ids are skipped.
			src.Patients = []string{"p0200", "nobody", "p0003", "p0100"}
			got = nil
			require.NoError(t, src.Each(ctx, func(p *Patient) error { got = append(got, p.ID); return nil }))
			assert.Equal(t, []string{"p0200", "p0003", "p0100"}, got)

			// fn's error stops the run and is returned.
			src.Patients = nil
			stop := errors.New("stop")
			n := 0
			err := src.Each(ctx, func(*Patient) error {
				n++
				if n == 10 {
					return stop
				}
				return nil
			})
			assert.ErrorIs(t, err, stop)
			assert.Equal(t, 10, n)

			cctx, cancel := context.WithCancel(ctx)
			n = 0
			err = src.Each(cctx, func(*Patient) error {
				n++
				if n == 5 {
					cancel()
				}
				return nil
			})
			assert.ErrorIs(t, err, context.Canceled)
			assert.Less(t, n, len(ids))
		})
	}
}
