package attribution

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEntryActiveOn(t *testing.T) {
	tests := []struct {
		start, end string
		inactive   bool
		day        string
		want       bool
	}{
		{"2026-01-01", "", false, "2026-05-01", true},
		{"2026-01-01", "", true, "2026-05-01", false},
		{"2026-06-01", "", false, "2026-05-01", false},
		{"2026-01-01", "2026-04-30", false, "2026-05-01", false},
		{"2026-01-01", "2026-05-01", false, "2026-05-01", true},
		{"2026-01-01", "2026-05", false, "2026-05-31", true},
		{"2026-01-01", "2026-04", false, "2026-05-01", false},
		{"2026", "2026", false, "2026-12-31", true},
		{"2026-01-01T00:00:00Z", "2026-05-01T10:00:00-05:00", false, "2026-05-01", true},
		{"", "", false, "1999-01-01", true},
	}
	for _, tc := range tests {
		e := &Entry{PeriodStart: tc.start, PeriodEnd: tc.end, Inactive: tc.inactive}
		assert.Equal(t, tc.want, e.ActiveOn(tc.day), "%+v", tc)
	}
}

func TestAssignmentsAndOrganizations(t *testing.T) {
	ctx := context.Background()
	st := listOf(t, StatusOpen) // pt1, pt2 in clinic one's list, contract 2026
	in2026 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

	as, err := Assignments(ctx, st.KV(), "pt1", in2026)
	require.NoError(t, err)
	require.Len(t, as, 1)
	assert.Equal(t, Assignment{GroupID: g1, OrganizationID: "clinic1", OrganizationName: "Clinic One", NPI: "1111111111", TIN: "111111111",
		ProviderNPI: "1000000001", PayerID: "payer", PeriodStart: "2026-01-01"}, as[0])
	as, err = Assignments(ctx, st.KV(), "pt1", time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	assert.Empty(t, as, "outside the contract period")
	as, err = Assignments(ctx, st.KV(), "nobody", in2026)
	require.NoError(t, err)
	assert.Empty(t, as)

	for _, org := range []string{"clinic1", "1111111111", "111111111", SystemTIN + "|111111111", SystemNPI + "|1111111111"} {
		pts, err := OrganizationPatients(ctx, st.KV(), org, in2026)
		require.NoError(t, err)
		assert.Equal(t, map[string]bool{"pt1": true, "pt2": true}, pts, org)
	}
	for _, org := range []string{"clinic2", SystemNPI + "|111111111", "", "|"} {
		gs, err := OrganizationGroups(ctx, st.KV(), org)
		require.NoError(t, err)
		assert.Empty(t, gs, org)
	}
	_, err = NewLists(st).Remove(ctx, g1, Selector{PatientID: "pt1"}, Audit{Who: "test"})
	require.NoError(t, err)
	pts, err := OrganizationPatients(ctx, st.KV(), "clinic1", in2026)
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"pt2": true}, pts, "a removed member is no longer attributed")
}
