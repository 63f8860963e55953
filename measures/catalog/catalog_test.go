package catalog

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

const cms165 = "ControllingHighBloodPressureFHIR"

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

func ecqm(t *testing.T) string { return filepath.Join(measuretest.SharedDir(t), "ecqm") }

func TestCatalogCompilesFromStoreAndCaches(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	require.NoError(t, LoadDir(ctx, st, ecqm(t), cms165))
	c := New(st, Options{})

	m, err := c.Measure(ctx, cms165)
	require.NoError(t, err)
	assert.Equal(t, "https://madie.cms.gov/Measure/ControllingHighBloodPressureFHIR", m.Def.URL)
	for _, ref := range []string{"Measure/" + cms165, m.Def.URL, m.Def.Canonical()} {
		again, err := c.Measure(ctx, ref)
		require.NoError(t, err, ref)
		assert.Same(t, m, again, "%s: compiled once", ref)
	}
	assert.Equal(t, 1, c.Len())

	defs, err := c.List(ctx)
	require.NoError(t, err)
	require.Len(t, defs, 1)
	assert.Equal(t, cms165, defs[0].ID)

	// Loading the same content again changes nothing: still cached.
	require.NoError(t, LoadDir(ctx, st, ecqm(t), cms165))
	again, err := c.Measure(ctx, cms165)
	require.NoError(t, err)
	assert.Same(t, m, again)

	// Writing an unrelated Library does not invalidate it.
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Library", ID: "other",
		Body: []byte(`{"resourceType":"Library","id":"other","url":"http://x/Library/other","status":"active","type":{"coding":[{"code":"logic-library"}]}}`)}}})
	require.NoError(t, err)
	again, err = c.Measure(ctx, cms165)
	require.NoError(t, err)
	assert.Same(t, m, again)

	// A changed ValueSet the measure uses recompiles it.
	vs, err := st.Read(ctx, "ValueSet", "2.16.840.1.113883.3.526.3.1002")
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.Unmarshal(vs.Body, &body))
	body["title"] = "changed"
	raw, _ := json.Marshal(body)
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "ValueSet", ID: vs.ID, Body: raw}}})
	require.NoError(t, err)
	changed, err := c.Measure(ctx, cms165)
	require.NoError(t, err)
	assert.NotSame(t, m, changed)
}

func TestCatalogErrors(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	require.NoError(t, LoadDir(ctx, st, ecqm(t), cms165))
	c := New(st, Options{})

	for _, ref := range []string{"nope", "Measure/nope", "http://example.org/Measure/nope", ""} {
		_, err := c.Measure(ctx, ref)
		assert.ErrorIs(t, err, ErrNotFound, ref)
	}
	assert.Zero(t, c.Len(), "unknown measures are not remembered")
	// A missing included library is named; adding it back repairs the measure.
	lib, err := st.Read(ctx, "Library", "FHIRHelpers")
	require.NoError(t, err)
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpDelete, Type: "Library", ID: "FHIRHelpers"}}})
	require.NoError(t, err)
	_, err = c.Measure(ctx, cms165)
	require.ErrorIs(t, err, measure.ErrBadContent)
	assert.Contains(t, err.Error(), "library FHIRHelpers version 4.4.000")
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Library", ID: "FHIRHelpers", Body: lib.Body}}})
	require.NoError(t, err)
	_, err = c.Measure(ctx, cms165)
	require.NoError(t, err)

	// A missing value set is named.
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpDelete, Type: "ValueSet", ID: "2.16.840.1.113883.3.526.3.1002"}}})
	require.NoError(t, err)
	_, err = c.Measure(ctx, cms165)
	require.ErrorIs(t, err, measure.ErrBadContent)
	assert.Contains(t, err.Error(), "2.16.840.1.113883.3.526.3.1002")

	// Content that cannot load is refused before anything is written.
	_, err = ContentResources(ctx, t.TempDir(), "Nope")
	assert.ErrorIs(t, err, measure.ErrBadContent)
}

// TestGroupMembers: a plain Group's active Patient members, and a missing
// Group is ErrSubjectNotFound.
func TestGroupMembers(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	body := `{"resourceType":"Group","id":"g","type":"person","actual":true,"member":[
		{"entity":{"reference":"Patient/a"}},
		{"entity":{"reference":"Patient/b"},"inactive":true},
		{"entity":{"reference":"Practitioner/p"}},
		{"entity":{"reference":"Patient/c"}}]}`
	_, err := st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Group", ID: "g", Body: []byte(body)}}})
	require.NoError(t, err)

	got, err := GroupMembers(ctx, st, "g", time.Time{})
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"a": true, "c": true}, got)

	_, err = GroupMembers(ctx, st, "nope", time.Time{})
	assert.ErrorIs(t, err, ErrSubjectNotFound)
}

// TestCovers: ATR membership periods are compared by date, open ends
// included, whatever the precision of the bounds.
func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		start, end, day string
		want            bool
	}{
		{"", "", "2025-06-01", true},
		{"2025-01-01", "2025-12-31", "2025-06-01", true},
		{"2025-06-01T10:00:00Z", "", "2025-06-01", true},
		{"", "2025-06-01T00:00:00Z", "2025-06-01", true},
		{"2025-06-02", "", "2025-06-01", false},
		{"", "2025-05-31", "2025-06-01", false},
	} {
		assert.Equal(t, tc.want, covers(tc.start, tc.end, tc.day), "%q..%q on %s", tc.start, tc.end, tc.day)
	}
}
