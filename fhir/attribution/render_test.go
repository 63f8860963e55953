package attribution

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store"
)

func memberRefs(body []byte) []string {
	var out []string
	for _, m := range gjson.GetBytes(body, "member").Array() {
		out = append(out, m.Get("entity.reference").String())
	}
	return out
}

// A list written before render-on-read (its Group carries the members,
// its description no layout) keeps serving its old versions as stored and
// moves to the index on its next change.
func TestRenderLegacyListUpgrades(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	prov := testDirectory().ByNPI("1000000001")
	g := &GroupInfo{ID: g1, PayerID: "payer", OrganizationID: "clinic1", TIN: prov.TIN,
		ContractSystem: DefaultContractSystem, Contract: "c1", Status: StatusOpen}
	ops := map[string][]byte{}
	for _, id := range []string{"pt1", "pt2"} {
		e := Entry{Member: Member{PatientID: id, PayerID: "payer", Provider: prov}, GroupID: g1, PeriodStart: "2026-01-01", ChangeType: ChangeNew}
		b, err := json.Marshal(&e)
		require.NoError(t, err)
		ops[memberKey(g1, id)] = b
	}
	require.NoError(t, st.KV().Batch(ctx, ops))
	var legacy bytes.Buffer
	_, err := WriteGroup(ctx, st.KV(), g, &legacy) // the old layout's stored body
	require.NoError(t, err)
	info, err := json.Marshal(g)
	require.NoError(t, err)
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Group", ID: g1, Body: legacy.Bytes()}},
		KV: map[string][]byte{kvGroup + g1: info}})
	require.NoError(t, err)

	v1, err := st.VRead(ctx, "Group", g1, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"Patient/pt1", "Patient/pt2"}, memberRefs(render(t, st, v1)), "a legacy version is served as stored")

	res, err := NewLists(st).Add(ctx, g1, Member{PatientID: "pt3", PayerID: "payer", Provider: prov}, "2026-02-01", "", Audit{Who: "test"})
	require.NoError(t, err)
	assert.EqualValues(t, 2, res.Version)
	assert.Equal(t, 3, res.Active, "the legacy members are counted")
	v2, err := st.VRead(ctx, "Group", g1, 2)
	require.NoError(t, err)
	assert.False(t, gjson.GetBytes(v2.Body, "member").Exists())
	assert.Equal(t, []string{"Patient/pt1", "Patient/pt2", "Patient/pt3"}, memberRefs(render(t, st, v2)))
	assert.Equal(t, []string{"Patient/pt1", "Patient/pt2"}, memberRefs(render(t, st, v1)))
}

func TestRenderGroupPassThroughAndSummary(t *testing.T) {
	st := openStore(t)
	plain := []byte(`{"resourceType":"Group","id":"g","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/a"}}]}`)
	put(t, st, plain)
	r, err := st.Read(context.Background(), "Group", "g")
	require.NoError(t, err)
	assert.Equal(t, []string{"Patient/a"}, memberRefs(render(t, st, r)), "a Group that is no list is served as stored")
	var buf bytes.Buffer
	require.NoError(t, RenderGroup(context.Background(), st.KV(), r, &buf, true))
	assert.False(t, gjson.GetBytes(buf.Bytes(), "member").Exists())
	assert.Equal(t, "SUBSETTED", gjson.GetBytes(buf.Bytes(), "meta.tag.0.code").String())
	assert.True(t, json.Valid(buf.Bytes()))
}

func TestDecodeEntryMatchesJSON(t *testing.T) {
	full := Entry{
		Member: Member{PatientID: "p", Name: "Jane \"J\" Doe", BirthDate: "1960-04-02", MemberID: "M1", CoverageID: "c", PayerID: "payer",
			Provider: Provider{NPI: "1", PractitionerID: "pr", OrganizationID: "o", TIN: "t"}, Basis: Retrospective},
		GroupID: "g", PeriodStart: "2026-01-01", PeriodEnd: "2026-12-31", Inactive: true, ChangeType: ChangeDropped,
	}
	for _, e := range []Entry{full, {Member: Member{PatientID: "only"}}} {
		b, err := json.Marshal(&e)
		require.NoError(t, err)
		var want, got Entry
		require.NoError(t, json.Unmarshal(b, &want))
		require.NoError(t, decodeEntry(b, &got))
		assert.Equal(t, want, got)
	}
	assert.Error(t, decodeEntry([]byte(`{"patient":`), new(Entry)))
}
