package auth

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGrant(t *testing.T) {
	tests := []struct {
		name      string
		requested string
		allowed   []string
		want      []string
		wantErr   bool
	}{
		{"v1 read within v1 read", "system/*.read", []string{"system/*.read"}, []string{"system/*.read"}, false},
		{"v2 rs within v1 read", "system/Patient.rs", []string{"system/*.read"}, []string{"system/Patient.rs"}, false},
		{"v1 read within v2 rs", "system/Observation.read", []string{"system/*.rs"}, []string{"system/Observation.read"}, false},
		{"read and search split across scopes", "system/Patient.rs", []string{"system/Patient.r", "system/*.s"}, []string{"system/Patient.rs"}, false},
		{"write outside read", "system/Patient.cud", []string{"system/*.read"}, nil, false},
		{"wildcard type outside one type", "system/*.rs", []string{"system/Patient.rs"}, nil, false},
		{"narrowed to what is allowed", "system/Patient.rs system/Claim.rs", []string{"system/Patient.*"}, []string{"system/Patient.rs"}, false},
		{"non-resource scope", "system/bulk-submit", []string{"system/bulk-submit"}, []string{"system/bulk-submit"}, false},
		{"non-resource scope not allowed", "system/bulk-submit", []string{"system/*.*"}, nil, false},
		{"letters out of order", "system/Patient.sr", []string{"system/*.*"}, nil, true},
		{"repeated letters", "system/Patient.rr", []string{"system/*.*"}, nil, true},
		{"patient context", "patient/*.read", []string{"system/*.*"}, nil, true},
		{"unknown type", "system/Nope.read", []string{"system/*.*"}, nil, true},
		{"query-restricted", "system/Observation.rs?category=labs", []string{"system/*.*"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := grant(tc.requested, tc.allowed)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzParseScope: scope parsing never panics, and a scope it accepts is
// always within the all-access scope.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"system/*.read", "system/Patient.cruds", "system/bulk-submit", "user/x", "system/.", "system/Patient.rs?x=1"} {
		f.Add(s)
	}
	all := []scope{{typ: "*", perms: "cruds"}}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := parseScope(s)
		if err != nil || sc.name != "" {
			return
		}
		if !within(sc, all) {
			t.Fatalf("%q parsed as %+v is not within system/*.*", s, sc)
		}
	})
}
