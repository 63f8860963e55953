package badgerstore

import (
	"context"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/store"
)

// Stores written before the current version was kept only in its current
// record have a history record for every version, the current one
// included; reading them must list each version once.
func TestHistoryOfOlderLayout(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		writes []store.Write // applied one per commit to Patient/p
		want   []uint64      // versions listed, newest first
		del    bool          // the newest is a tombstone
	}{
		{"created", []store.Write{{Op: store.OpPut}}, []uint64{1}, false},
		{"updated", []store.Write{{Op: store.OpPut}, {Op: store.OpPut}, {Op: store.OpPut}}, []uint64{3, 2, 1}, false},
		{"deleted", []store.Write{{Op: store.OpPut}, {Op: store.OpDelete}}, []uint64{2, 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, older := range []bool{false, true} {
				st, err := Open(ctx, t.TempDir(), Options{NoSync: true, GCInterval: -1})
				require.NoError(t, err)
				for i, w := range tt.writes {
					w.Type, w.ID = "Patient", "p"
					if w.Op == store.OpPut {
						w.Body = []byte(`{"resourceType":"Patient","gender":"` + []string{"male", "female", "other"}[i%3] + `"}`)
					}
					_, err := st.Commit(ctx, store.Tx{Writes: []store.Write{w}})
					require.NoError(t, err)
				}
				if older { // what the previous layout also wrote
					require.NoError(t, st.db.Update(func(txn *badger.Txn) error {
						item, err := txn.Get(currentKey("Patient", "p"))
						if err != nil {
							return err
						}
						v, err := item.ValueCopy(nil)
						if err != nil {
							return err
						}
						rec, err := decodeRecord(v)
						if err != nil {
							return err
						}
						return txn.Set(historyKey("Patient", "p", rec.version), v)
					}))
				}
				hist, err := st.History(ctx, store.HistoryQuery{Type: "Patient", ID: "p"})
				require.NoError(t, err)
				var got []uint64
				for _, r := range hist {
					got = append(got, r.Version)
				}
				assert.Equal(t, tt.want, got, "older layout %v", older)
				assert.Equal(t, tt.del, hist[0].Deleted)
				for _, q := range []store.HistoryQuery{{Type: "Patient"}, {}} {
					all, err := st.History(ctx, q)
					require.NoError(t, err)
					assert.Len(t, all, len(tt.want), "query %+v", q)
				}
				// Paging one at a time still lists every version once.
				var paged []uint64
				q := store.HistoryQuery{Type: "Patient", ID: "p", Count: 1}
				for {
					page, err := st.History(ctx, q)
					require.NoError(t, err)
					if len(page) == 0 {
						break
					}
					paged = append(paged, page[0].Version)
					q.Before = page[0].Ref()
				}
				assert.Equal(t, tt.want, paged)
				for _, v := range tt.want {
					res, err := st.VRead(ctx, "Patient", "p", v)
					if v == tt.want[0] && tt.del {
						require.ErrorIs(t, err, store.ErrDeleted)
					} else {
						require.NoError(t, err)
						assert.Contains(t, string(res.Body), `"versionId":"`)
					}
					assert.Equal(t, v, res.Version)
				}
				_, err = st.VRead(ctx, "Patient", "p", tt.want[0]+1)
				require.ErrorIs(t, err, store.ErrNotFound)
				require.NoError(t, st.Close())
			}
		})
	}
}

// Types without registered search params get the common ones, computed
// once; they must index as computing them per type would.
func TestIndexerUnregisteredTypes(t *testing.T) {
	ix := newIndexer()
	tested := 0
	for _, typ := range []string{"MessageHeader", "Basic", "Binary", "Zzz"} {
		if _, known := ix.defs[typ]; known {
			continue
		}
		tested++
		want, alias := indexedDefs(typ)
		assert.Equal(t, want, ix.defsFor(typ), typ)
		assert.Empty(t, alias, typ)
		assert.Equal(t, "_tag", ix.indexName(typ, "_tag"))
	}
	require.Positive(t, tested)
}
