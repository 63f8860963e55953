package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCareGapsNotationFlag(t *testing.T) {
	for _, tt := range []struct {
		name   string
		values []string
		want   map[string]string
		bad    bool
	}{
		{"none", nil, map[string]string{}, false},
		{"url and url|version", []string{"https://x/Measure/a=increase", "https://x/Measure/b|1.0=decrease"},
			map[string]string{"https://x/Measure/a": "increase", "https://x/Measure/b|1.0": "decrease"}, false},
		{"unknown direction", []string{"https://x/Measure/a=up"}, nil, true},
		{"no direction", []string{"https://x/Measure/a"}, nil, true},
		{"no url", []string{"=increase"}, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := careGapsOptions{notations: tt.values}.notationMap()
			if tt.bad {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "--care-gaps-notation")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
