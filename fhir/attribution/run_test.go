package attribution

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// put stores resources given as JSON; the type and id are read from them.
func put(t *testing.T, st store.Store, bodies ...[]byte) {
	t.Helper()
	var tx store.Tx
	for _, b := range bodies {
		r := gjson.ParseBytes(b)
		tx.Writes = append(tx.Writes, store.Write{Op: store.OpPut, Type: r.Get("resourceType").String(), ID: r.Get("id").String(), Body: b})
	}
	_, err := st.Commit(context.Background(), tx)
	require.NoError(t, err)
}

func seedDirectory(t *testing.T, st store.Store) {
	t.Helper()
	put(t, st,
		[]byte(`{"resourceType":"Organization","id":"payer","name":"Acme Health"}`),
		[]byte(`{"resourceType":"Organization","id":"clinic1","name":"Clinic One","identifier":[{"system":"`+SystemNPI+`","value":"1111111111"},{"system":"`+SystemTIN+`","value":"111111111"}]}`),
		[]byte(`{"resourceType":"Organization","id":"clinic2","name":"Clinic Two","identifier":[{"system":"`+SystemNPI+`","value":"2222222222"},{"system":"`+SystemTIN+`","value":"222222222"}]}`))
	for i, org := range []string{"clinic1", "clinic2", "clinic2"} {
		put(t, st,
			fmt.Appendf(nil, `{"resourceType":"Practitioner","id":"p%d","identifier":[{"system":"%s","value":"100000000%d"}]}`, i+1, SystemNPI, i+1),
			fmt.Appendf(nil, `{"resourceType":"PractitionerRole","id":"r%d","active":true,"practitioner":{"reference":"Practitioner/p%d"},"organization":{"reference":"Organization/%s"}}`, i+1, i+1, org))
	}
}

// render serves a stored Group version as a read would.
func render(t *testing.T, st store.Store, r *store.Resource) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, RenderGroup(context.Background(), st.KV(), r, &buf, false))
	return buf.Bytes()
}

func withPatient(body []byte, id string) []byte {
	return bytes.ReplaceAll(body, []byte(`"Patient/x"`), []byte(`"Patient/`+id+`"`))
}

type memberState struct {
	group, change, npi, start, end string
	inactive                       bool
}

func indexState(t *testing.T, st store.Store) map[string]memberState {
	t.Helper()
	ctx := context.Background()
	out := map[string]memberState{}
	gs, err := Groups(ctx, st.KV())
	require.NoError(t, err)
	for _, g := range gs {
		require.NoError(t, Members(ctx, st.KV(), g.ID, func(e *Entry) error {
			out[e.PatientID+"@"+g.ID] = memberState{g.ID, e.ChangeType, e.Provider.NPI, e.PeriodStart, e.PeriodEnd, e.Inactive}
			return nil
		}))
	}
	return out
}

const (
	g1 = "atr-payer-clinic1"
	g2 = "atr-payer-clinic2"
)

func TestRunMonthOverMonth(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	seedDirectory(t, st)
	put(t, st,
		patient("pt1", "Practitioner/p1"), coverage("pt1", "2020-01-01", "", ""),
		patient("pt2", ""), coverage("pt2", "2020-01-01", "", ""),
		withPatient(eob("pt2-e1", "p2", "1000000002", "99213", "2025-10-01", 91), "pt2"),
		patient("pt3", "Practitioner/p2"), coverage("pt3", "2020-01-01", "", ""),
		patient("pt4", "Practitioner/p1"), // uninsured: no contract to attribute under
	)
	opts := RunOptions{Options: Options{Method: Hybrid, AsOf: day("2026-01-01")}}
	res, err := Run(ctx, st, opts)
	require.NoError(t, err)
	assert.Equal(t, 4, res.Patients)
	assert.Equal(t, 3, res.Attributed)
	assert.Equal(t, map[string]int{ChangeNew: 3}, res.Changes)
	assert.Equal(t, map[string]memberState{
		"pt1@" + g1: {g1, ChangeNew, "1000000001", "2026-01-01", "", false},
		"pt2@" + g2: {g2, ChangeNew, "1000000002", "2026-01-01", "", false},
		"pt3@" + g2: {g2, ChangeNew, "1000000002", "2026-01-01", "", false},
	}, indexState(t, st))

	// Month 2: pt1 moves to a clinic-two PCP, pt3 to another clinic-two
	// clinician, pt2 stays, pt5 joins.
	put(t, st, patient("pt1", "Practitioner/p3"), patient("pt3", "PractitionerRole/r3"),
		patient("pt5", "Practitioner/p1"), coverage("pt5", "2026-01-15", "", ""))
	opts.AsOf = day("2026-02-01")
	res, err = Run(ctx, st, opts)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{ChangeNew: 2, ChangeDropped: 1, ChangeChanged: 1, ChangeNoChange: 1}, res.Changes)
	assert.Equal(t, map[string]memberState{
		"pt1@" + g1: {g1, ChangeDropped, "1000000001", "2026-01-01", "2026-01-31", true},
		"pt1@" + g2: {g2, ChangeNew, "1000000003", "2026-02-01", "", false},
		"pt2@" + g2: {g2, ChangeNoChange, "1000000002", "2026-01-01", "", false},
		"pt3@" + g2: {g2, ChangeChanged, "1000000003", "2026-01-01", "", false},
		"pt5@" + g1: {g1, ChangeNew, "1000000001", "2026-02-01", "", false},
	}, indexState(t, st))

	// Month 3: pt5 is deleted; the dropped pt1 entry leaves clinic one.
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpDelete, Type: "Patient", ID: "pt5"}}})
	require.NoError(t, err)
	opts.AsOf = day("2026-03-01")
	res, err = Run(ctx, st, opts)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{ChangeDropped: 1, ChangeNoChange: 3}, res.Changes)
	assert.Equal(t, map[string]memberState{
		"pt1@" + g2: {g2, ChangeNoChange, "1000000003", "2026-02-01", "", false},
		"pt2@" + g2: {g2, ChangeNoChange, "1000000002", "2026-01-01", "", false},
		"pt3@" + g2: {g2, ChangeNoChange, "1000000003", "2026-01-01", "", false},
		"pt5@" + g1: {g1, ChangeDropped, "1000000001", "2026-02-01", "2026-02-28", true},
	}, indexState(t, st))

	// Every run wrote a new version of each list.
	for _, gr := range res.Groups {
		assert.EqualValues(t, 3, gr.Version, gr.ID)
	}
	hist, err := st.History(ctx, store.HistoryQuery{Type: "Group", ID: g1, Count: -1})
	require.NoError(t, err)
	assert.Len(t, hist, 3)
}

func TestRunGroupRendering(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	seedDirectory(t, st)
	put(t, st,
		patient("pt1", "Practitioner/p1"), coverage("pt1", "2020-01-01", "", ""),
		patient("pt2", "Practitioner/p1"), coverage("pt2", "2020-01-01", "", ""))
	_, err := Run(ctx, st, RunOptions{Options: Options{Method: Prospective, AsOf: day("2026-01-01")}, Status: StatusDraft})
	require.NoError(t, err)
	put(t, st, patient("pt2", "Practitioner/p2"))
	res, err := Run(ctx, st, RunOptions{Options: Options{Method: Prospective, AsOf: day("2026-02-01")}, Status: StatusDraft})
	require.NoError(t, err)
	require.Len(t, res.Groups, 2)
	assert.Equal(t, GroupResult{ID: g1, Version: 2, Active: 1, Inactive: 1, Status: StatusDraft, Provenance: res.Groups[0].Provenance}, res.Groups[0])
	assert.NotEmpty(t, res.Groups[0].Provenance)

	r, err := st.Read(ctx, "Group", g1)
	require.NoError(t, err)
	assert.False(t, gjson.GetBytes(r.Body, "member").Exists(), "the stored Group carries no members")
	body := render(t, st, r)
	g := gjson.ParseBytes(body)
	v, err := validate.New()
	require.NoError(t, err)
	_, _, err = v.Resource(body)
	require.NoError(t, err, "the rendered Group is valid R4")
	assert.Equal(t, "2", g.Get("meta.versionId").String())
	assert.Equal(t, ProfileATRGroup, g.Get("meta.profile.0").String())
	assert.True(t, g.Get("meta.lastUpdated").Exists())
	assert.Equal(t, "person", g.Get("type").String())
	assert.True(t, g.Get("actual").Bool())
	assert.Equal(t, "Organization/payer", g.Get("managingEntity.reference").String())
	assert.Equal(t, "Acme Health – Clinic One attribution list", g.Get("name").String())
	assert.EqualValues(t, 1, g.Get("quantity").Int())
	ext := func(r gjson.Result, url string) gjson.Result {
		return r.Get(`extension.#(url=="` + url + `")`)
	}
	assert.Equal(t, StatusDraft, ext(g, ExtAttributionListStatus).Get("valueCode").String())
	assert.Equal(t, "2026-01-01", ext(g, ExtContractValidity).Get("valuePeriod.start").String())
	assert.Equal(t, "2026-12-31", ext(g, ExtContractValidity).Get("valuePeriod.end").String())
	assert.Equal(t, "1111111111", g.Get(`identifier.#(system=="`+SystemNPI+`").value`).String())
	assert.Equal(t, "111111111", g.Get(`identifier.#(system=="`+SystemTIN+`").value`).String())
	assert.Equal(t, g1, g.Get(`identifier.#(system=="`+DefaultContractSystem+`").value`).String())

	members := g.Get("member").Array()
	require.Len(t, members, 2)
	m1, m2 := members[0], members[1]
	assert.Equal(t, "Patient/pt1", m1.Get("entity.reference").String())
	assert.False(t, m1.Get("inactive").Bool())
	assert.Equal(t, ChangeNoChange, ext(m1, ExtChangeType).Get("valueCode").String())
	assert.Equal(t, "Coverage/cov-pt1", ext(m1, ExtCoverageReference).Get("valueReference.reference").String())
	assert.Equal(t, "Practitioner/p1", ext(m1, ExtAttributedProvider).Get("valueReference.reference").String())
	assert.Equal(t, "1000000001", ext(m1, ExtAttributedProvider).Get("valueReference.identifier.value").String())
	assert.Equal(t, "2026-01-01", m1.Get("period.start").String())
	assert.Equal(t, "Patient/pt2", m2.Get("entity.reference").String())
	assert.True(t, m2.Get("inactive").Bool())
	assert.Equal(t, ChangeDropped, ext(m2, ExtChangeType).Get("valueCode").String())
	assert.Equal(t, "2026-01-31", m2.Get("period.end").String())

	var buf bytes.Buffer
	require.NoError(t, WriteCSV(ctx, st.KV(), &buf))
	rows, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, [][]string{
		csvHeader,
		{g1, "M-pt1", "pt1", "Jane Doe", "1960-04-02", "1000000001", "111111111", "2026-01-01", "", ChangeNoChange},
		{g1, "M-pt2", "pt2", "Jane Doe", "1960-04-02", "1000000001", "111111111", "2026-01-01", "2026-01-31", ChangeDropped},
		{g2, "M-pt2", "pt2", "Jane Doe", "1960-04-02", "1000000002", "222222222", "2026-02-01", "", ChangeNew},
	}, rows)
}

func TestRunRejectsBadOptions(t *testing.T) {
	st := openStore(t)
	tests := []struct {
		name string
		opts RunOptions
		want string
	}{
		{"no as-of date", RunOptions{Options: Options{Method: Hybrid}}, "as-of"},
		{"unknown method", RunOptions{Options: Options{Method: "plurality", AsOf: time.Now()}}, "unknown method"},
		{"unknown status", RunOptions{Options: Options{Method: Hybrid, AsOf: time.Now()}, Status: "closed"}, "unknown list status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), st, tc.opts)
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tc.want), err.Error())
		})
	}
}

// A run limited to one contract changes that list only: a member moving
// to the other list is left where it was, and the other list gets no
// new version.
func TestRunOneContract(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	seedDirectory(t, st)
	put(t, st,
		patient("pt1", "Practitioner/p1"), coverage("pt1", "2020-01-01", "", ""),
		patient("pt2", "Practitioner/p2"), coverage("pt2", "2020-01-01", "", ""))
	opts := RunOptions{Options: Options{Method: Prospective, AsOf: day("2026-01-01")}}
	_, err := Run(ctx, st, opts)
	require.NoError(t, err)

	put(t, st, patient("pt1", "Practitioner/p2"), patient("pt3", "Practitioner/p2"), coverage("pt3", "2020-01-01", "", ""))
	opts.AsOf, opts.Contract = day("2026-02-01"), g2
	res, err := Run(ctx, st, opts)
	require.NoError(t, err)
	require.Len(t, res.Groups, 1)
	assert.Equal(t, g2, res.Groups[0].ID)
	assert.Equal(t, map[string]memberState{
		"pt1@" + g1: {g1, ChangeNew, "1000000001", "2026-01-01", "", false},
		"pt1@" + g2: {g2, ChangeNew, "1000000002", "2026-02-01", "", false},
		"pt2@" + g2: {g2, ChangeNoChange, "1000000002", "2026-01-01", "", false},
		"pt3@" + g2: {g2, ChangeNew, "1000000002", "2026-02-01", "", false},
	}, indexState(t, st))
	r, err := st.Read(ctx, "Group", g1)
	require.NoError(t, err)
	assert.EqualValues(t, 1, r.Version, "the other list is untouched")
	as, err := Assignments(ctx, st.KV(), "pt1", day("2026-03-01"))
	require.NoError(t, err)
	assert.Len(t, as, 2, "pt1 is in both lists until clinic one's is run")
}
