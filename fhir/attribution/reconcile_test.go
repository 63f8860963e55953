package attribution

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store"
)

// listOf runs a prospective attribution putting pt1 and pt2 in clinic one's
// list with the given status.
func listOf(t *testing.T, status string) store.Store {
	t.Helper()
	st := openStore(t)
	seedDirectory(t, st)
	put(t, st,
		patient("pt1", "Practitioner/p1"), coverage("pt1", "2020-01-01", "", ""),
		patient("pt2", "Practitioner/p1"), coverage("pt2", "2020-01-01", "", ""))
	_, err := Run(context.Background(), st, RunOptions{Options: Options{Method: Prospective, AsOf: day("2026-01-01")}, Status: status})
	require.NoError(t, err)
	return st
}

func groupStatus(t *testing.T, st store.Store, id string) (status string, members map[string]string) {
	t.Helper()
	r, err := st.Read(context.Background(), "Group", id)
	require.NoError(t, err)
	g := gjson.ParseBytes(render(t, st, r))
	members = map[string]string{}
	for _, m := range g.Get("member").Array() {
		state := m.Get(`extension.#(url=="` + ExtChangeType + `").valueCode`).String()
		if m.Get("inactive").Bool() {
			state += "/inactive"
		}
		members[m.Get("entity.reference").String()] = state
	}
	return g.Get(`extension.#(url=="` + ExtAttributionListStatus + `").valueCode`).String(), members
}

func TestListsReconciliation(t *testing.T) {
	ctx := context.Background()
	who := Audit{Who: "Organization/clinic1", Why: "patient moved"}
	p2 := Member{PatientID: "pt2", CoverageID: "cov-pt2", PayerID: "payer", Provider: testDirectory().ByNPI("1000000002")}
	p3 := Member{PatientID: "pt3", CoverageID: "cov-pt3", PayerID: "payer", Provider: testDirectory().ByNPI("1000000001")}
	type op func(l *Lists) (*GroupResult, error)
	add := func(m Member) op {
		return func(l *Lists) (*GroupResult, error) { return l.Add(ctx, g1, m, "2026-01-15", "", who) }
	}
	rm := func(sel Selector) op {
		return func(l *Lists) (*GroupResult, error) { return l.Remove(ctx, g1, sel, who) }
	}
	confirm := func(l *Lists) (*GroupResult, error) { return l.Confirm(ctx, g1, who) }
	tests := []struct {
		name        string
		status      string
		ops         []op
		wantErr     error // of the last op
		wantStatus  string
		wantMembers map[string]string
	}{
		{name: "draft: removal keeps the member inactive and dropped", status: StatusDraft,
			ops:        []op{rm(Selector{PatientID: "pt1"})},
			wantStatus: StatusDraft, wantMembers: map[string]string{"Patient/pt1": "dropped/inactive", "Patient/pt2": "new"}},
		{name: "draft: removing an inactive member again is not found", status: StatusDraft,
			ops: []op{rm(Selector{PatientID: "pt1"}), rm(Selector{PatientID: "pt1"})}, wantErr: ErrMemberNotFound,
			wantStatus: StatusDraft, wantMembers: map[string]string{"Patient/pt1": "dropped/inactive", "Patient/pt2": "new"}},
		{name: "open: removal removes", status: StatusOpen,
			ops:        []op{rm(Selector{PatientID: "pt1", ProviderNPI: "1000000001", CoverageID: "cov-pt1"})},
			wantStatus: StatusOpen, wantMembers: map[string]string{"Patient/pt2": "new"}},
		{name: "removal for another provider is not found", status: StatusOpen,
			ops: []op{rm(Selector{PatientID: "pt1", ProviderNPI: "1000000002"})}, wantErr: ErrMemberNotFound,
			wantStatus: StatusOpen, wantMembers: map[string]string{"Patient/pt1": "new", "Patient/pt2": "new"}},
		{name: "removal of a non-member is not found", status: StatusOpen,
			ops: []op{rm(Selector{PatientID: "pt9"})}, wantErr: ErrMemberNotFound,
			wantStatus: StatusOpen, wantMembers: map[string]string{"Patient/pt1": "new", "Patient/pt2": "new"}},
		{name: "add a new member and move an existing one", status: StatusOpen,
			ops:        []op{add(p3), add(p2)},
			wantStatus: StatusOpen, wantMembers: map[string]string{"Patient/pt1": "new", "Patient/pt2": "changed", "Patient/pt3": "new"}},
		{name: "confirm makes the list final and drops inactive members", status: StatusDraft,
			ops:        []op{rm(Selector{PatientID: "pt1"}), confirm},
			wantStatus: StatusFinal, wantMembers: map[string]string{"Patient/pt2": "new"}},
		{name: "a final list rejects additions", status: StatusFinal,
			ops: []op{add(p3)}, wantErr: ErrListFinal,
			wantStatus: StatusFinal, wantMembers: map[string]string{"Patient/pt1": "new", "Patient/pt2": "new"}},
		{name: "a final list rejects removals", status: StatusFinal,
			ops: []op{rm(Selector{PatientID: "pt1"})}, wantErr: ErrListFinal,
			wantStatus: StatusFinal, wantMembers: map[string]string{"Patient/pt1": "new", "Patient/pt2": "new"}},
		{name: "a final list cannot be confirmed again", status: StatusOpen,
			ops: []op{confirm, confirm}, wantErr: ErrListFinal,
			wantStatus: StatusFinal, wantMembers: map[string]string{"Patient/pt1": "new", "Patient/pt2": "new"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := listOf(t, tc.status)
			l := NewLists(st)
			var err error
			var changes int
			for _, o := range tc.ops {
				var res *GroupResult
				res, err = o(l)
				if err == nil {
					changes++
					assert.EqualValues(t, 1+changes, res.Version, "every change is a new Group version")
				}
			}
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			status, members := groupStatus(t, st, g1)
			assert.Equal(t, tc.wantStatus, status)
			assert.Equal(t, tc.wantMembers, members)
			provs, err := st.Search(ctx, store.Query{Type: "Provenance", Params: []store.Param{{Name: "target", Values: []string{"Group/" + g1}}}, Count: 100})
			require.NoError(t, err)
			var audits int
			for _, p := range provs.Resources {
				pj := gjson.ParseBytes(p.Body)
				if pj.Get("agent.0.who.reference").String() != who.Who {
					continue // the run's
				}
				audits++
				assert.Equal(t, who.Why, pj.Get("reason.0.text").String())
			}
			assert.Equal(t, changes, audits, "every change is recorded with who and why")
		})
	}
	_, err := NewLists(openStore(t)).Confirm(ctx, "atr-none", who)
	assert.ErrorIs(t, err, ErrNoList)

	// A monthly run after manual changes recomputes the list: pt3, added
	// by hand with no coverage or PCP in the data, is dropped.
	st := listOf(t, StatusOpen)
	l := NewLists(st)
	_, err = l.Add(ctx, g1, p3, "2026-01-15", "", who)
	require.NoError(t, err)
	_, err = l.Run(ctx, RunOptions{Options: Options{Method: Prospective, AsOf: day("2026-02-01")}, Status: StatusOpen})
	require.NoError(t, err)
	_, members := groupStatus(t, st, g1)
	assert.Equal(t, map[string]string{"Patient/pt1": "nochange", "Patient/pt2": "nochange", "Patient/pt3": "dropped/inactive"}, members)
}
