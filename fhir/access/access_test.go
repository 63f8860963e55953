package access_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/access"
)

// TestAllows covers the SMART v1 and v2 scope suffixes every endpoint's
// scope check rests on.
func TestAllows(t *testing.T) {
	for _, tc := range []struct {
		name        string
		scopes      []string
		typ         string
		interaction rune
		want        bool
	}{
		{"v1 read allows read", []string{"system/Patient.read"}, "Patient", access.Read, true},
		{"v1 read allows search", []string{"system/Patient.read"}, "Patient", access.Search, true},
		{"v1 read refuses create", []string{"system/Patient.read"}, "Patient", access.Create, false},
		{"v1 write allows update", []string{"system/*.write"}, "Claim", access.Update, true},
		{"v1 write allows delete", []string{"system/*.write"}, "Claim", access.Delete, true},
		{"v1 write refuses read", []string{"system/*.write"}, "Claim", access.Read, false},
		{"v1 star allows all", []string{"system/*.*"}, "Observation", access.Delete, true},
		{"v2 rs allows search", []string{"system/Patient.rs"}, "Patient", access.Search, true},
		{"v2 rs refuses update", []string{"system/Patient.rs"}, "Patient", access.Update, false},
		{"v2 cud allows create", []string{"system/*.cud"}, "Encounter", access.Create, true},
		{"v2 query restriction keeps its letters", []string{"system/Observation.rs?category=labs"}, "Observation", access.Read, true},
		{"other type refused", []string{"system/Patient.read"}, "Observation", access.Read, false},
		{"wildcard type asked with one type's scope", []string{"system/Patient.read"}, "*", access.Read, false},
		{"patient context ignored", []string{"patient/*.read"}, "Patient", access.Read, false},
		{"user context ignored", []string{"user/*.*"}, "Patient", access.Read, false},
		{"letters outside cruds refused", []string{"system/Patient.rx"}, "Patient", access.Read, false},
		{"non-resource scope grants nothing", []string{"system/bulk-submit"}, "Patient", access.Create, false},
		{"any scope may grant", []string{"system/Patient.read", "system/Claim.c"}, "Claim", access.Create, true},
		{"no scopes", nil, "Patient", access.Read, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &access.Principal{ClientID: "c", Scopes: tc.scopes}
			assert.Equal(t, tc.want, p.Allows(tc.typ, tc.interaction))
		})
	}
	var nobody *access.Principal
	assert.False(t, nobody.Allows("Patient", access.Read), "an unauthenticated request is allowed nothing")
}

type patients map[string]bool

func (s patients) Contains(id string) bool { return s[id] }

func TestSeesPatient(t *testing.T) {
	var nobody *access.Principal
	assert.False(t, nobody.SeesPatient("p1"))
	assert.True(t, (&access.Principal{}).SeesPatient("p1"), "no patient set: every patient")
	p := &access.Principal{Patients: patients{"p1": true}}
	assert.True(t, p.SeesPatient("p1"))
	assert.False(t, p.SeesPatient("p2"))
	assert.False(t, (&access.Principal{Patients: access.NoPatients{}}).SeesPatient("p1"))
}

// TestAnonymous: each call returns its own copy, so one request widening
// or narrowing its principal cannot leak into another's.
func TestAnonymous(t *testing.T) {
	a := access.Anonymous()
	assert.True(t, a.Allows("Patient", access.Delete))
	a.Scopes[0] = "system/Patient.read"
	assert.True(t, access.Anonymous().Allows("Claim", access.Delete))
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	assert.Nil(t, access.FromContext(ctx))
	p := &access.Principal{ClientID: "payer"}
	got := access.FromContext(access.WithPrincipal(ctx, p))
	require.NotNil(t, got)
	assert.Same(t, p, got)
}

// TestBind covers how authentication and bulk jobs restrict a caller: only
// organization-bound callers, to what the resolver grants, and to nothing
// when no resolver is configured.
func TestBind(t *testing.T) {
	boom := errors.New("boom")
	grant := func(_ context.Context, org string) (access.Visibility, error) {
		if org == "broken" {
			return access.Visibility{}, boom
		}
		return access.Visibility{Patients: access.Set{"p1": true}, Groups: access.Set{"g1": true}}, nil
	}
	for _, tc := range []struct {
		name        string
		org         string
		resolve     access.Resolver
		restricted  bool
		p1, g1, any bool
	}{
		{"unbound caller sees all", "", grant, false, true, true, true},
		{"bound caller sees what is granted", "org1", grant, true, true, true, false},
		{"bound caller without resolver sees nothing", "org1", nil, true, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &access.Principal{ClientID: "c", Organization: tc.org}
			require.NoError(t, p.Bind(context.Background(), tc.resolve))
			assert.Equal(t, tc.restricted, p.Restricted())
			assert.Equal(t, tc.p1, p.SeesPatient("p1"))
			assert.Equal(t, tc.g1, p.SeesGroup("g1"))
			assert.Equal(t, tc.any, p.SeesPatient("p2"))
		})
	}
	err := (&access.Principal{Organization: "broken"}).Bind(context.Background(), grant)
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "broken")
}
