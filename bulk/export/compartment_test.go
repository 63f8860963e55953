package export

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
	"github.com/equitas/equitas/store/searchparam"
)

// nested returns a JSON object holding a reference to patient at path
// (dot-separated elements, the last one the Reference).
func nested(path, patient string) string {
	v := fmt.Sprintf(`{"reference":"Patient/%s"}`, patient)
	parts := strings.Split(path, ".")
	for i := len(parts) - 1; i >= 1; i-- {
		v = fmt.Sprintf(`{%q:%s}`, parts[i], v)
	}
	return fmt.Sprintf(`%q:%s`, parts[0], v)
}

// TestCompartmentMatchesTheStore: for every type and compartment element,
// the store's compartment index and compartmentPatients (which finds the
// patients of deleted resources) agree.
func TestCompartmentMatchesTheStore(t *testing.T) {
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	types := searchparam.PatientCompartmentTypes()
	var tx store.Tx
	bodies := map[string][]byte{}
	for _, typ := range types {
		for i, path := range searchparam.PatientCompartmentPaths(typ) {
			id := fmt.Sprintf("%s-%d", strings.ToLower(typ), i)
			body := fmt.Appendf(nil, `{"resourceType":%q,"id":%q,%s}`, typ, id, nested(path, "pc"))
			bodies[typ+"/"+id] = body
			tx.Writes = append(tx.Writes, store.Write{Op: store.OpPut, Type: typ, ID: id, Body: body})
		}
	}
	tx.Writes = append(tx.Writes, store.Write{Op: store.OpPut, Type: "Patient", ID: "pc", Body: []byte(`{"resourceType":"Patient","id":"pc"}`)})
	_, err = st.Commit(ctx, tx)
	require.NoError(t, err)
	indexed := map[string]bool{}
	require.NoError(t, st.Compartment(ctx, "pc", nil, func(r *store.Resource) error {
		indexed[r.Type+"/"+r.ID] = true
		return nil
	}))
	for key, body := range bodies {
		typ, id, _ := strings.Cut(key, "/")
		assert.True(t, indexed[key], "the store puts %s in the compartment", key)
		assert.True(t, slices.Contains(compartmentPatients(typ, id, body), "pc"), "compartmentPatients finds %s", key)
	}
	assert.Equal(t, []string{"pc"}, compartmentPatients("Patient", "pc", []byte(`{"resourceType":"Patient","id":"pc"}`)))
	assert.Empty(t, compartmentPatients("Organization", "o", []byte(`{"resourceType":"Organization","id":"o","partOf":{"reference":"Patient/pc"}}`)))
}
