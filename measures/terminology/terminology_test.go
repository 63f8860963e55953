package terminology

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/elm"
)

const bundle = `{"resourceType":"Bundle","entry":[
 {"resource":{"resourceType":"ValueSet","url":"http://x/vs/a","version":"1","name":"A","expansion":{"contains":[
   {"system":"http://loinc.org","code":"1-1"},
   {"abstract":true,"code":"group","contains":[{"system":"http://snomed.info/sct","code":"22"}]}]}}},
 {"resource":{"resourceType":"ValueSet","url":"http://x/vs/b","compose":{"include":[{"system":"http://s","concept":[{"code":"c"}]}]}}},
 {"resource":{"resourceType":"Patient","id":"ignored"}}]}`

func TestIndexMembership(t *testing.T) {
	x := NewIndex()
	n, err := x.AddJSON(strings.NewReader(bundle))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, []string{"http://x/vs/a", "http://x/vs/b"}, x.URLs())
	tests := []struct {
		url, version, system, code string
		want                       bool
	}{
		{"http://x/vs/a", "", "http://loinc.org", "1-1", true},
		{"http://x/vs/a", "1", "http://snomed.info/sct", "22", true},    // nested contains
		{"http://x/vs/a", "", "http://snomed.info/sct", "group", false}, // abstract
		{"http://x/vs/a", "", "http://snomed.info/sct", "1-1", false},   // wrong system
		{"http://x/vs/a", "", "", "22", true},                           // no system: any
		{"http://x/vs/a|1", "", "http://loinc.org", "1-1", true},        // url|version
		{"http://x/vs/a", "2", "http://loinc.org", "1-1", true},         // unknown version falls back
		{"http://x/vs/b", "", "http://s", "c", true},                    // compose-only
	}
	for _, tt := range tests {
		got, err := x.InValueSet(tt.url, tt.version, tt.system, tt.code)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, "%+v", tt)
	}
	vs, err := x.ValueSet(context.Background(), "http://x/vs/a", "")
	require.NoError(t, err)
	assert.Len(t, vs.Codes(), 2)
	_, err = x.ValueSet(context.Background(), "http://x/vs/none", "")
	assert.ErrorIs(t, err, ErrUnknownValueSet)
	assert.True(t, errors.Is(err, elm.ErrValueSetNotFound), "the engine recognises unknown value sets")
}

// TestContainsDoesNotAllocate holds the package doc's promise that a
// membership test costs map lookups and no allocation.
func TestContainsDoesNotAllocate(t *testing.T) {
	x := NewIndex()
	_, err := x.AddJSON(strings.NewReader(bundle))
	require.NoError(t, err)
	vs, err := x.ValueSet(context.Background(), "http://x/vs/a", "")
	require.NoError(t, err)
	var hits int
	allocs := testing.AllocsPerRun(100, func() {
		for _, c := range [][2]string{{"http://loinc.org", "1-1"}, {"", "22"}, {"http://snomed.info/sct", "1-1"}} {
			if vs.Contains(c[0], c[1]) {
				hits++
			}
		}
	})
	assert.Zero(t, allocs)
	assert.Positive(t, hits)
}

func TestIndexRejects(t *testing.T) {
	tests := map[string]string{
		`{"resourceType":"ValueSet","url":"u"}`:                                                                 "neither expansion nor compose",
		`{"resourceType":"ValueSet","expansion":{}}`:                                                            "without url",
		`{"resourceType":"ValueSet","url":"u","compose":{"include":[{"system":"s","filter":[{"op":"is-a"}]}]}}`: "no expansion",
		`{"resourceType":"Patient"}`:                                                                            "expected a ValueSet or Bundle",
		`{`:                                                                                                     "malformed JSON",
	}
	for in, want := range tests {
		_, err := NewIndex().AddJSON(strings.NewReader(in))
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want)
	}
}

func FuzzAddJSON(f *testing.F) {
	f.Add([]byte(bundle))
	f.Fuzz(func(t *testing.T, raw []byte) {
		x := NewIndex()
		if _, err := x.AddJSON(strings.NewReader(string(raw))); err != nil {
			return
		}
		for _, u := range x.URLs() {
			vs, err := x.Lookup(u, "")
			require.NoError(t, err)
			for _, c := range vs.Codes() {
				assert.True(t, vs.Contains(c.System, c.Code))
			}
		}
	})
}
