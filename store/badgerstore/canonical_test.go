package badgerstore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
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
			got, _, valid, err := canonical("Patient", "p-1.x", []byte(b))
			require.NoError(t, err)
			if valid {
				assert.True(t, gjson.ValidBytes(got), "reported valid")
			}
			want, err := sjson.SetBytes([]byte(b), "id", "p-1.x")
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))
		})
	}
}

// FuzzCanonicalValid checks canonical's valid report, on which the index
// keys of a write skip re-checking the body: a body it calls valid is
// valid JSON and gets the keys a checked one gets.
func FuzzCanonicalValid(f *testing.F) {
	for _, b := range append(keyBodies,
		`{"resourceType":"Patient"}`, `{"resourceType":"Patient","meta":{"versionId":"1"},"id":"p-1.x"}`,
		`{"resourceType":"Patient","meta":{}}`, "{\"resourceType\":\"Patient\"}\n") {
		f.Add(b)
	}
	ix := newIndexer()
	f.Fuzz(func(t *testing.T, body string) {
		out, _, valid, err := canonical("Patient", "p-1.x", []byte(body))
		if err != nil || !valid {
			return
		}
		require.True(t, gjson.ValidBytes(out), "%q reported valid", out)
		require.Equal(t, ix.keysOf("Patient", "p-1.x", out, false), ix.keysOf("Patient", "p-1.x", out, true))
	})
}
