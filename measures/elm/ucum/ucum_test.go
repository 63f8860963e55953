package ucum_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/elm/ucum"
)

func TestConvert(t *testing.T) {
	tests := []struct {
		v        float64
		from, to string
		want     float64
		ok       bool
	}{
		{1, "g", "mg", 1000, true},
		{100, "mg/dL", "g/L", 1, true},
		{1, "mg/mL", "mg/dL", 100, true},
		{2, "wk", "d", 14, true},
		{1, "a", "mo", 12, true},
		{1, "week", "days", 7, true},
		{90, "min", "h", 1.5, true},
		{60, "/min", "/h", 3600, true},
		{1, "kg/m2", "g/cm2", 0.1, true},
		{1, "ng/mL", "ug/L", 1, true},
		{5, "{copies}/mL", "/mL", 5, true},
		{2, "{drinks}/d", "/d", 2, true},
		{50, "%", "1", 0.5, true},
		{120, "mm[Hg]", "mm[Hg]", 120, true},
		{1, "mm[Hg]", "kPa", 0.133322387415, true},
		{1, "mg/d", "g/d", 0.001, true},
		{7, "[pH]", "[pH]", 7, true},
		{1, "mg", "mL", 0, false},
		{7, "[pH]", "1", 0, false},
		{1, "bogus", "g", 0, false},
	}
	for _, tc := range tests {
		got, err := ucum.Convert(tc.v, tc.from, tc.to)
		if !tc.ok {
			assert.Error(t, err, "%s→%s", tc.from, tc.to)
			continue
		}
		require.NoError(t, err, "%s→%s", tc.from, tc.to)
		assert.InDelta(t, tc.want, got, 1e-9*max(1, tc.want), "%v %s→%s", tc.v, tc.from, tc.to)
	}
}
