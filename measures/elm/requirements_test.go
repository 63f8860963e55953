package elm_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/measures/elm"
)

// TestRetrieves checks the data requirements of every shipped library
// against what the libraries declare: each retrieve has a FHIR type, value
// sets resolve to declared value-set canonicals (also through include
// aliases) and direct-reference codes to declared code systems.
func TestRetrieves(t *testing.T) {
	shared := sharedDir(t)
	files, err := filepath.Glob(filepath.Join(shared, "ecqm", "libraries", "*.json"))
	require.NoError(t, err)
	var libs []*elm.Library
	declared := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		lib, err := elm.ParseLibrary(raw)
		require.NoError(t, err)
		libs = append(libs, lib)
	}
	// Value-set and code-system canonicals as the CQL source states them.
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		cql, err := base64.StdEncoding.DecodeString(gjson.GetBytes(raw, `content.#(contentType=="text/cql").data`).String())
		require.NoError(t, err)
		require.NotEmpty(t, cql, f)
		for _, line := range strings.Split(string(cql), "\n") {
			for _, kw := range []string{"valueset ", "codesystem "} {
				if i := strings.Index(line, kw); i >= 0 {
					if j := strings.Index(line[i:], ": '"); j >= 0 {
						rest := line[i+j+3:]
						if k := strings.IndexByte(rest, '\''); k >= 0 {
							declared[rest[:k]] = true
						}
					}
				}
			}
		}
	}
	rs := elm.Retrieves(libs)
	require.NotEmpty(t, rs)
	seen := map[string]bool{}
	withVS, withCodes := 0, 0
	for _, r := range rs {
		assert.NotEmpty(t, r.DataType, "%+v", r)
		assert.NotContains(t, r.DataType, "}", "model namespace dropped")
		assert.False(t, seen[r.Key()], "retrieves are distinct")
		seen[r.Key()] = true
		if r.ValueSet != "" {
			withVS++
			assert.True(t, declared[r.ValueSet], "value set %s is declared by some library", r.ValueSet)
			assert.NotEmpty(t, r.CodeProperty)
		}
		for _, c := range r.Codes {
			withCodes++
			assert.NotEmpty(t, c.Code)
			assert.True(t, declared[c.System], "code %s system %q is declared by some library", c.Code, c.System)
		}
	}
	assert.Positive(t, withVS)
	assert.Positive(t, withCodes, "some retrieves filter by direct-reference codes")
}
