package bundle

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResourceMarshalsTypeAndIDFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Resource
		want string
	}{
		{"type and id lead", Resource{"status": "final", "id": "x", "resourceType": "List", "code": map[string]any{"text": "a"}},
			`{"resourceType":"List","id":"x","code":{"text":"a"},"status":"final"}`},
		{"no id", Resource{"b": 1, "resourceType": "Basic", "a": true}, `{"resourceType":"Basic","a":true,"b":1}`},
		{"empty", Resource{}, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.r)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
		})
	}
}
