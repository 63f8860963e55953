package badgerstore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/sjson"
)

// canonical's shortcut for a body without id must give the bytes sjson
// gives, or the content hash (SkipUnchanged) would differ from that of
// bodies stored before.
func TestCanonicalIDMatchesSjson(t *testing.T) {
	bodies := []string{
		`{"resourceType":"Patient"}`,
		`{"resourceType":"Patient","gender":"female"}`,
		`{"resourceType":"Patient","name":[{"family":"X"}]}`,
		`{"resourceType":"Patient","gender":"female" }`,
		"{\"resourceType\":\"Patient\"}\n",
		` {"resourceType":"Patient"}`,
		`{"resourceType":"Patient","id":"other"}`,
		`{"resourceType":"Patient","id":7}`,
		`{"resourceType":"Patient","meta":{"profile":["http://x"]},"gender":"male"}`,
	}
	for _, b := range bodies {
		t.Run(b, func(t *testing.T) {
			got, _, err := canonical("Patient", "p-1.x", []byte(b))
			require.NoError(t, err)
			want, err := sjson.SetBytes([]byte(b), "id", "p-1.x")
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))
		})
	}
}
