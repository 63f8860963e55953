package main

import (
	"context"
	"net/http"
	"net/url"
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

func TestImportServerFlag(t *testing.T) {
	root, stop := startServe(t, filepath.Join(t.TempDir(), "data"), "--bulk-min-poll", "0s")
	defer func() { require.NoError(t, stop()) }()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Patient.ndjson"), []byte(
		`{"resourceType":"Patient","id":"flag1","gender":"male"}`+"\n"), 0o600))

	cmd := newRootCmd()
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"import", "--server", root + "/fhir", dir})
	require.NoError(t, cmd.ExecuteContext(context.Background()), out.String())
	assert.Contains(t, out.String(), "1 written")
	assert.Equal(t, http.StatusOK, status(t, "GET", root+"/fhir/Patient/flag1", ""))
}

func TestAllowHosts(t *testing.T) {
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		require.NoError(t, err)
		return u
	}
	tests := []struct {
		name          string
		hosts         []string
		authenticated bool
		url           string
		ok            bool
	}{
		{"no list, no auth: any http url", nil, false, "http://10.0.0.1/x", true},
		{"no list, no auth: not file", nil, false, "file:///etc/passwd", false},
		{"no list, with auth: nothing", nil, true, "http://ehr.example.org/x", false},
		{"listed host", []string{"ehr.example.org"}, true, "https://ehr.example.org/fhir/x", true},
		{"listed host:port", []string{"ehr.example.org:8443"}, true, "https://ehr.example.org:8443/x", true},
		{"unlisted host", []string{"ehr.example.org"}, true, "http://169.254.169.254/latest", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := allowHosts(tt.hosts, tt.authenticated)(mustURL(tt.url))
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}
