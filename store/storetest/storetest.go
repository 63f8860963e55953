// Package storetest is a conformance suite for store.Store
// implementations: every backend runs the same behavioural checks
// (versions, history, conditional writes, compartments, lastUpdated scans,
// the key-value space, snapshots and FHIR search semantics).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store"
)

// Run runs the suite; open returns a fresh, empty store for each subtest
// (the suite closes it).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"VersionsHistoryTombstones", testVersions},
		{"ConditionalWrites", testConditional},
		{"IfMatchRace", testIfMatchRace},
		{"SkipUnchanged", testSkipUnchanged},
		{"TransactionAtomic", testTxAtomic},
		{"Compartment", testCompartment},
		{"ScanSince", testScanSince},
		{"KV", testKV},
		{"Snapshot", testSnapshot},
		{"HistoryPaging", testHistoryPaging},
		{"SnapshotTimeUnderWrites", testSnapshotTime},
		{"Counts", testCounts},
		{"InvalidWrites", testInvalid},
		{"Search", testSearch},
		{"SearchPaging", testPaging},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			t.Cleanup(func() { _ = st.Close() })
			tc.fn(t, st)
		})
	}
}

func put(typ, id, body string) store.Write {
	return store.Write{Op: store.OpPut, Type: typ, ID: id, Body: []byte(body)}
}

func commit(t *testing.T, st store.Store, ws ...store.Write) []*store.Resource {
	t.Helper()
	res, err := st.Commit(context.Background(), store.Tx{Writes: ws})
	require.NoError(t, err)
	require.Len(t, res, len(ws))
	return res
}

func patient(id, family string) store.Write {
	return put("Patient", id, fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":%q}]}`, id, family))
}

func testVersions(t *testing.T, st store.Store) {
	ctx := context.Background()
	r1 := commit(t, st, put("Patient", "p1", `{"resourceType":"Patient","active":true,"meta":{"versionId":"99","profile":["http://x/p"]},"name":[{"family":"Ng"}]}`))[0]
	assert.Equal(t, uint64(1), r1.Version)
	assert.False(t, r1.LastUpdated.IsZero())
	body := gjson.ParseBytes(r1.Body)
	assert.Equal(t, "p1", body.Get("id").String(), "store sets id")
	assert.Equal(t, "1", body.Get("meta.versionId").String())
	assert.Equal(t, "http://x/p", body.Get("meta.profile.0").String(), "other meta kept")
	lu, err := time.Parse(time.RFC3339Nano, body.Get("meta.lastUpdated").String())
	require.NoError(t, err)
	assert.True(t, lu.Equal(r1.LastUpdated), "meta.lastUpdated %v equals Resource.LastUpdated %v", lu, r1.LastUpdated)

	r2 := commit(t, st, put("Patient", "p1", `{"resourceType":"Patient","active":false}`))[0]
	assert.Equal(t, uint64(2), r2.Version)
	assert.True(t, r2.LastUpdated.After(r1.LastUpdated))

	cur, err := st.Read(ctx, "Patient", "p1")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), cur.Version)
	assert.Equal(t, "false", gjson.GetBytes(cur.Body, "active").Raw)

	v1, err := st.VRead(ctx, "Patient", "p1", 1)
	require.NoError(t, err)
	assert.Equal(t, "Ng", gjson.GetBytes(v1.Body, "name.0.family").String())

	assert.True(t, r1.Created)
	assert.False(t, r2.Created)
	del := commit(t, st, store.Write{Op: store.OpDelete, Type: "Patient", ID: "p1"})[0]
	assert.True(t, del.Deleted)
	assert.Equal(t, uint64(3), del.Version)

	tomb, err := st.Read(ctx, "Patient", "p1")
	require.ErrorIs(t, err, store.ErrDeleted)
	require.NotNil(t, tomb)
	assert.True(t, tomb.Deleted)
	assert.Equal(t, uint64(3), tomb.Version)
	assert.Nil(t, tomb.Body)

	_, err = st.VRead(ctx, "Patient", "p1", 3)
	assert.ErrorIs(t, err, store.ErrDeleted)
	_, err = st.VRead(ctx, "Patient", "p1", 4)
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = st.Read(ctx, "Patient", "nope")
	assert.ErrorIs(t, err, store.ErrNotFound)

	// Deleting again changes nothing.
	again := commit(t, st, store.Write{Op: store.OpDelete, Type: "Patient", ID: "p1"})[0]
	assert.Equal(t, uint64(3), again.Version)

	// Recreate after delete continues the version sequence.
	r4 := commit(t, st, put("Patient", "p1", `{"resourceType":"Patient"}`))[0]
	assert.Equal(t, uint64(4), r4.Version)
	assert.True(t, r4.Created, "recreated after delete")

	h, err := st.History(ctx, store.HistoryQuery{Type: "Patient", ID: "p1"})
	require.NoError(t, err)
	require.Len(t, h, 4)
	for i, v := range []uint64{4, 3, 2, 1} {
		assert.Equal(t, v, h[i].Version)
	}
	assert.True(t, h[1].Deleted)

	h, err = st.History(ctx, store.HistoryQuery{Type: "Patient", ID: "p1", Since: r2.LastUpdated})
	require.NoError(t, err)
	assert.Len(t, h, 2, "versions after r2")
	h, err = st.History(ctx, store.HistoryQuery{Type: "Patient", ID: "p1", Count: 1})
	require.NoError(t, err)
	assert.Len(t, h, 1)

	commit(t, st, put("Observation", "o1", `{"resourceType":"Observation","status":"final"}`))
	th, err := st.History(ctx, store.HistoryQuery{Type: "Patient"})
	require.NoError(t, err)
	assert.Len(t, th, 4)
	sh, err := st.History(ctx, store.HistoryQuery{})
	require.NoError(t, err)
	require.Len(t, sh, 5)
	assert.Equal(t, "Observation", sh[0].Type, "system history is newest first")
	for i := 1; i < len(sh); i++ {
		assert.False(t, sh[i].LastUpdated.After(sh[i-1].LastUpdated))
	}
	_, err = st.History(ctx, store.HistoryQuery{Type: "Patient", ID: "nobody"})
	assert.ErrorIs(t, err, store.ErrNotFound)

	// A store-assigned id.
	created := commit(t, st, put("Patient", "", `{"resourceType":"Patient"}`))[0]
	assert.NotEmpty(t, created.ID)
	assert.Equal(t, created.ID, gjson.GetBytes(created.Body, "id").String())
}

func testConditional(t *testing.T, st store.Store) {
	ctx := context.Background()
	commit(t, st, patient("p1", "A"))
	_, err := st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: "p1", Body: []byte(`{"resourceType":"Patient"}`), IfMatch: 2}}})
	require.ErrorIs(t, err, store.ErrVersionConflict)
	var we *store.WriteError
	require.ErrorAs(t, err, &we)
	assert.Equal(t, 0, we.Index)

	res, err := st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: "p1", Body: []byte(`{"resourceType":"Patient"}`), IfMatch: 1}}})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), res[0].Version)

	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: "p1", Body: []byte(`{"resourceType":"Patient"}`), IfNoneExist: true}}})
	require.ErrorIs(t, err, store.ErrVersionConflict)
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: "p9", Body: []byte(`{"resourceType":"Patient"}`), IfNoneExist: true}}})
	require.NoError(t, err)

	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpDelete, Type: "Patient", ID: "p1", IfMatch: 1}}})
	require.ErrorIs(t, err, store.ErrVersionConflict)
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: "ghost", Body: []byte(`{"resourceType":"Patient"}`), IfMatch: 1}}})
	require.ErrorIs(t, err, store.ErrVersionConflict)
}

func testIfMatchRace(t *testing.T, st store.Store) {
	ctx := context.Background()
	commit(t, st, patient("p1", "Start"))
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = st.Commit(ctx, store.Tx{Writes: []store.Write{{
				Op: store.OpPut, Type: "Patient", ID: "p1", IfMatch: 1,
				Body: []byte(fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"W%d"}]}`, i)),
			}}})
		}()
	}
	wg.Wait()
	winners := 0
	for _, err := range errs {
		if err == nil {
			winners++
		} else {
			assert.ErrorIs(t, err, store.ErrVersionConflict)
		}
	}
	assert.Equal(t, 1, winners)
	cur, err := st.Read(ctx, "Patient", "p1")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), cur.Version)

	// Concurrent creates of one id: exactly one is reported as the creation.
	res := make([][]*store.Resource, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = st.Commit(ctx, store.Tx{Writes: []store.Write{patient("race", fmt.Sprint("R", i))}})
		}()
	}
	wg.Wait()
	created := 0
	for i := range n {
		require.NoError(t, errs[i])
		if res[i][0].Created {
			created++
			assert.Equal(t, uint64(1), res[i][0].Version)
		}
	}
	assert.Equal(t, 1, created)
}

func testSkipUnchanged(t *testing.T, st store.Store) {
	ctx := context.Background()
	body := `{"resourceType":"Patient","id":"p1","gender":"female"}`
	w := store.Write{Op: store.OpPut, Type: "Patient", ID: "p1", Body: []byte(body), SkipUnchanged: true}
	r1 := commit(t, st, w)[0]
	r2 := commit(t, st, w)[0]
	assert.Equal(t, r1.Version, r2.Version)
	assert.True(t, r1.LastUpdated.Equal(r2.LastUpdated))
	// A re-ingested copy that carries the stored meta is still unchanged.
	w.Body = r1.Body
	assert.Equal(t, r1.Version, commit(t, st, w)[0].Version)
	w.Body = []byte(`{"resourceType":"Patient","id":"p1","gender":"male"}`)
	assert.Equal(t, uint64(2), commit(t, st, w)[0].Version)
	h, err := st.History(ctx, store.HistoryQuery{Type: "Patient", ID: "p1"})
	require.NoError(t, err)
	assert.Len(t, h, 2)

	// Unchanged against the stored version but not against an earlier write
	// of the same transaction: it is written, and the indexes follow.
	female := store.Write{Op: store.OpPut, Type: "Patient", ID: "p1", Body: []byte(`{"resourceType":"Patient","id":"p1","gender":"female"}`), SkipUnchanged: true}
	commit(t, st, female)
	res := commit(t, st, store.Write{Op: store.OpPut, Type: "Patient", ID: "p1", Body: []byte(`{"resourceType":"Patient","gender":"male"}`)}, female)
	assert.Equal(t, uint64(5), res[1].Version)
	for gender, want := range map[string]int{"male": 0, "female": 1} {
		sr, err := st.Search(ctx, store.Query{Type: "Patient", Params: []store.Param{{Name: "gender", Values: []string{gender}}}})
		require.NoError(t, err)
		assert.Len(t, sr.Resources, want, gender)
	}
}

func testTxAtomic(t *testing.T, st store.Store) {
	ctx := context.Background()
	commit(t, st, patient("p1", "A"))
	_, err := st.Commit(ctx, store.Tx{
		Writes: []store.Write{patient("p2", "B"), patient("p3", "C"),
			{Op: store.OpPut, Type: "Patient", ID: "p1", Body: []byte(`{"resourceType":"Patient"}`), IfMatch: 7}},
		KV: map[string][]byte{"dedup/1": []byte("x")},
	})
	require.ErrorIs(t, err, store.ErrVersionConflict)
	var we *store.WriteError
	require.ErrorAs(t, err, &we)
	assert.Equal(t, 2, we.Index)
	for _, id := range []string{"p2", "p3"} {
		_, err := st.Read(ctx, "Patient", id)
		assert.ErrorIs(t, err, store.ErrNotFound, id)
	}
	_, err = st.KV().Get(ctx, "dedup/1")
	assert.ErrorIs(t, err, store.ErrNotFound)

	// Two writes to the same resource in one transaction.
	res := commit(t, st, patient("p4", "X"), patient("p4", "Y"))
	assert.Equal(t, uint64(1), res[0].Version)
	assert.Equal(t, uint64(2), res[1].Version)

	// KV joins the transaction.
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{patient("p5", "Z")}, KV: map[string][]byte{"dedup/2": []byte("y")}})
	require.NoError(t, err)
	v, err := st.KV().Get(ctx, "dedup/2")
	require.NoError(t, err)
	assert.Equal(t, "y", string(v))
}

func compartmentIDs(t *testing.T, st store.Store, pid string, types ...string) []string {
	t.Helper()
	var out []string
	err := st.Compartment(context.Background(), pid, types, func(r *store.Resource) error {
		require.False(t, r.Deleted)
		require.NotEmpty(t, r.Body)
		out = append(out, r.Type+"/"+r.ID)
		return nil
	})
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

func testCompartment(t *testing.T, st store.Store) {
	obs := func(id, subj string) store.Write {
		return put("Observation", id, fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":%q}}`, subj))
	}
	commit(t, st, patient("a", "A"), patient("b", "B"), patient("a1", "A1"),
		obs("o1", "Patient/a"), obs("o2", "Patient/a"), obs("o3", "Patient/b"), obs("o4", "Patient/a1"),
		put("Encounter", "e1", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/a"}}`),
		put("Coverage", "c1", `{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/b"},"subscriber":{"reference":"Patient/a"},"payor":[{"reference":"Organization/o"}]}`),
		put("Claim", "cl1", `{"resourceType":"Claim","patient":{"reference":"http://example.org/fhir/Patient/a"}}`),
	)
	assert.Equal(t, []string{"Claim/cl1", "Coverage/c1", "Encounter/e1", "Observation/o1", "Observation/o2", "Patient/a"}, compartmentIDs(t, st, "a"))
	assert.Equal(t, []string{"Observation/o1", "Observation/o2"}, compartmentIDs(t, st, "a", "Observation"))
	assert.Equal(t, []string{"Coverage/c1", "Observation/o3", "Patient/b"}, compartmentIDs(t, st, "b"))

	// Subject change moves the resource; delete removes it.
	commit(t, st, obs("o1", "Patient/b"), store.Write{Op: store.OpDelete, Type: "Observation", ID: "o2"})
	assert.Equal(t, []string{"Observation/o1", "Observation/o3"}, compartmentIDs(t, st, "b", "Observation"))
	assert.Empty(t, compartmentIDs(t, st, "a", "Observation"))
	assert.Equal(t, []string{"Observation/o4", "Patient/a1"}, compartmentIDs(t, st, "a1"), "a1 is not in a's compartment and vice versa")
	assert.Empty(t, compartmentIDs(t, st, "nobody"))

	// Group membership is a compartment link too, and follows member changes.
	commit(t, st, put("Group", "g", `{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/a"}},{"entity":{"reference":"Patient/b"}}]}`))
	assert.Equal(t, []string{"Group/g"}, compartmentIDs(t, st, "a", "Group"))
	commit(t, st, put("Group", "g", `{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/b"}}]}`))
	assert.Empty(t, compartmentIDs(t, st, "a", "Group"))
	assert.Equal(t, []string{"Group/g"}, compartmentIDs(t, st, "b", "Group"))
}

func testScanSince(t *testing.T, st store.Store) {
	ctx := context.Background()
	r := commit(t, st, patient("p1", "A"), patient("p2", "B"))
	mid := r[1].LastUpdated
	commit(t, st, patient("p3", "C"))
	commit(t, st, patient("p1", "A2"))
	commit(t, st, store.Write{Op: store.OpDelete, Type: "Patient", ID: "p2"})
	collect := func(since time.Time) []string {
		var ids []string
		require.NoError(t, st.Scan(ctx, "Patient", since, func(r *store.Resource) error {
			ids = append(ids, r.ID)
			return nil
		}))
		sort.Strings(ids)
		return ids
	}
	assert.Equal(t, []string{"p1", "p3"}, collect(time.Time{}))
	assert.Equal(t, []string{"p1", "p3"}, collect(mid))
	assert.Empty(t, collect(time.Now().Add(time.Hour)))
	var obs int
	require.NoError(t, st.Scan(ctx, "Observation", time.Time{}, func(*store.Resource) error { obs++; return nil }))
	assert.Zero(t, obs)
}

func testKV(t *testing.T, st store.Store) {
	ctx := context.Background()
	kv := st.KV()
	_, err := kv.Get(ctx, "job/1")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, kv.Put(ctx, "job/1", []byte("a")))
	require.NoError(t, kv.Put(ctx, "job/2", []byte("b")))
	require.NoError(t, kv.Put(ctx, "jobx/3", []byte("c")))
	require.NoError(t, kv.Put(ctx, "client/1", []byte{}))
	v, err := kv.Get(ctx, "job/1")
	require.NoError(t, err)
	assert.Equal(t, "a", string(v))
	var keys []string
	require.NoError(t, kv.Scan(ctx, "job/", func(k string, v []byte) error {
		keys = append(keys, k+"="+string(v))
		return nil
	}))
	assert.Equal(t, []string{"job/1=a", "job/2=b"}, keys)
	require.NoError(t, kv.Batch(ctx, map[string][]byte{"job/1": nil, "job/3": []byte("c")}))
	_, err = kv.Get(ctx, "job/1")
	assert.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, kv.Delete(ctx, "job/2"))
	keys = nil
	require.NoError(t, kv.Scan(ctx, "job/", func(k string, v []byte) error { keys = append(keys, k); return nil }))
	assert.Equal(t, []string{"job/3"}, keys)
	v, err = kv.Get(ctx, "client/1")
	require.NoError(t, err)
	assert.Empty(t, v)
}

func testSnapshot(t *testing.T, st store.Store) {
	ctx := context.Background()
	first := commit(t, st, patient("p1", "A"))[0]
	snap, err := st.Snapshot(ctx)
	require.NoError(t, err)
	defer snap.Close()
	assert.False(t, snap.Time().Before(first.LastUpdated))
	later := commit(t, st, patient("p1", "B"), patient("p2", "C"))
	assert.True(t, later[0].LastUpdated.After(snap.Time()), "writes after a snapshot are later than its time")

	r, err := snap.Read(ctx, "Patient", "p1")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), r.Version)
	_, err = snap.Read(ctx, "Patient", "p2")
	assert.ErrorIs(t, err, store.ErrNotFound)
	n := 0
	require.NoError(t, snap.Scan(ctx, "Patient", time.Time{}, func(*store.Resource) error { n++; return nil }))
	assert.Equal(t, 1, n)
	res, err := snap.Search(ctx, store.Query{Type: "Patient", Params: []store.Param{{Name: "family", Values: []string{"a"}}}})
	require.NoError(t, err)
	assert.Len(t, res.Resources, 1)
	ids := compartmentIDsSnap(t, snap, "p1")
	assert.Equal(t, []string{"Patient/p1"}, ids)
}

func compartmentIDsSnap(t *testing.T, snap store.Snapshot, pid string) []string {
	var out []string
	require.NoError(t, snap.Compartment(context.Background(), pid, nil, func(r *store.Resource) error {
		out = append(out, r.Type+"/"+r.ID)
		return nil
	}))
	return out
}

func testCounts(t *testing.T, st store.Store) {
	ctx := context.Background()
	commit(t, st, patient("p1", "A"), patient("p2", "B"), put("Observation", "o1", `{"resourceType":"Observation"}`))
	commit(t, st, patient("p1", "A2"), store.Write{Op: store.OpDelete, Type: "Patient", ID: "p2"}, store.Write{Op: store.OpDelete, Type: "Patient", ID: "zz"})
	c, err := st.Counts(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"Patient": 1, "Observation": 1}, c)
}

func testInvalid(t *testing.T, st store.Store) {
	ctx := context.Background()
	bad := []store.Write{
		put("Patient", "p1", `{"resourceType":"Patient"`),
		put("Patient", "p1", `[1]`),
		put("Patient", "p1", `{"resourceType":"Observation"}`),
		put("Patient", "bad id!", `{"resourceType":"Patient"}`),
		put("patient", "p1", `{"resourceType":"patient"}`),
		{Op: 0, Type: "Patient", ID: "p1"},
	}
	for i, w := range bad {
		_, err := st.Commit(ctx, store.Tx{Writes: []store.Write{patient("ok"+strconv.Itoa(i), "x"), w}})
		assert.ErrorIs(t, err, store.ErrInvalid, "case %d", i)
		_, err = st.Read(ctx, "Patient", "ok"+strconv.Itoa(i))
		assert.ErrorIs(t, err, store.ErrNotFound, "nothing half-written (case %d)", i)
	}
}

func testClosed(t *testing.T, st store.Store) {
	ctx := context.Background()
	require.NoError(t, st.Close())
	_, err := st.Read(ctx, "Patient", "p1")
	assert.True(t, errors.Is(err, store.ErrClosed))
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{patient("p1", "x")}})
	assert.ErrorIs(t, err, store.ErrClosed)
	_, err = st.Search(ctx, store.Query{Type: "Patient"})
	assert.ErrorIs(t, err, store.ErrClosed)
	_, err = st.KV().Get(ctx, "x")
	assert.ErrorIs(t, err, store.ErrClosed)
}

// testSnapshotTime checks the invariant incremental exports rely on: a
// snapshot shows exactly the versions whose lastUpdated is at or before
// its Time, even while writes go on.
func testSnapshotTime(t *testing.T, st store.Store) {
	ctx := context.Background()
	const writers, perWriter, ids = 4, 40, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				_, err := st.Commit(ctx, store.Tx{Writes: []store.Write{patient(fmt.Sprintf("s%d", (w*perWriter+i)%ids), fmt.Sprint("W", w, "-", i))}})
				assert.NoError(t, err)
			}
		}()
	}
	type view struct {
		at       time.Time
		versions map[string]uint64
	}
	var views []view
	for range 20 {
		snap, err := st.Snapshot(ctx)
		require.NoError(t, err)
		v := view{at: snap.Time(), versions: map[string]uint64{}}
		require.NoError(t, snap.Scan(ctx, "Patient", time.Time{}, func(r *store.Resource) error {
			assert.False(t, r.LastUpdated.After(v.at), "%s v%d updated %v after snapshot time %v", r.ID, r.Version, r.LastUpdated, v.at)
			v.versions[r.ID] = r.Version
			return nil
		}))
		snap.Close()
		views = append(views, v)
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	for i := range ids {
		id := fmt.Sprintf("s%d", i)
		hist, err := st.History(ctx, store.HistoryQuery{Type: "Patient", ID: id, Count: -1})
		require.NoError(t, err)
		for _, v := range views {
			var want uint64
			for _, h := range hist { // newest first
				if !h.LastUpdated.After(v.at) {
					want = h.Version
					break
				}
			}
			assert.Equal(t, want, v.versions[id], "%s in the snapshot at %v", id, v.at)
		}
	}
}

// testHistoryPaging pages instance, type and system history with Before
// across versions that share a timestamp (one transaction).
func testHistoryPaging(t *testing.T, st store.Store) {
	ctx := context.Background()
	for i := range 7 {
		var ws []store.Write
		for j := range 3 {
			ws = append(ws, patient(fmt.Sprintf("h%d", j), fmt.Sprint("F", i)), patient(fmt.Sprintf("h%d", j), fmt.Sprint("G", i)))
		}
		commit(t, st, ws...)
		commit(t, st, put("Observation", fmt.Sprint("ho", i), `{"resourceType":"Observation"}`))
	}
	queries := []store.HistoryQuery{
		{Type: "Patient", ID: "h1"},
		{Type: "Patient"},
		{},
	}
	for _, q := range queries {
		all, err := st.History(ctx, store.HistoryQuery{Type: q.Type, ID: q.ID, Count: -1})
		require.NoError(t, err)
		for _, size := range []int{1, 4, 5} {
			var paged []*store.Resource
			q := q
			q.Count = size
			for {
				page, err := st.History(ctx, q)
				require.NoError(t, err)
				require.LessOrEqual(t, len(page), size)
				paged = append(paged, page...)
				if len(page) < size {
					break
				}
				q.Before = page[len(page)-1].Ref()
			}
			require.Len(t, paged, len(all), "%+v size %d", q, size)
			for i := range all {
				assert.Equal(t, all[i].Ref(), paged[i].Ref(), "%+v size %d at %d", q, size, i)
			}
		}
	}
}
