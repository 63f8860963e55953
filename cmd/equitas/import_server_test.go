package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestImportViaServer(t *testing.T) {
	root, stop := startServe(t, filepath.Join(t.TempDir(), "data"), "--bulk-min-poll", "0s")
	defer func() { require.NoError(t, stop()) }()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Patient.ndjson"), []byte(
		`{"resourceType":"Patient","id":"a1","gender":"female"}`+"\n"+
			`{"resourceType":"Patient","id":"a2","gender":"sometimes"}`+"\n"+
			`{"resourceType":"Patient","id":"a3"}`+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Observation.ndjson"), []byte(
		`{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/a1"}}`+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.ndjson"), nil, 0o600))

	var out strings.Builder
	err := importViaServer(context.Background(), &out, importServerOptions{Server: root, Poll: 50e6}, dir)
	require.Error(t, err, "one line was rejected")
	assert.Contains(t, out.String(), "line 2")
	assert.Contains(t, out.String(), "3 written, 0 unchanged, 1 failed")
	for _, p := range []string{"/fhir/Patient/a1", "/fhir/Patient/a3", "/fhir/Observation/o1"} {
		assert.Equal(t, http.StatusOK, status(t, "GET", root+p, ""), p)
	}
	assert.Equal(t, http.StatusNotFound, status(t, "GET", root+"/fhir/Patient/a2", ""))

	// Importing the same files again changes nothing.
	out.Reset()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Patient.ndjson"), []byte(`{"resourceType":"Patient","id":"a1","gender":"female"}`+"\n"), 0o600))
	require.NoError(t, importViaServer(context.Background(), &out, importServerOptions{Server: root + "/fhir", Poll: 50e6}, dir))
	assert.Contains(t, out.String(), "0 written, 2 unchanged, 0 failed")
}
