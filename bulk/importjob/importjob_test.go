package importjob_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/bulk/importjob"
	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store/badgerstore"
)

// source serves a manifest listing the given files (type → handler).
func source(t *testing.T, files map[string]http.HandlerFunc) string {
	var hs *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/manifest.json", func(w http.ResponseWriter, r *http.Request) {
		var out []string
		for typ := range files {
			out = append(out, fmt.Sprintf(`{"type":%q,"url":"%s/%s.ndjson"}`, typ, hs.URL, typ))
		}
		fmt.Fprintf(w, `{"transactionTime":"2026-01-01T00:00:00Z","requiresAccessToken":false,"output":[%s],"error":[]}`, strings.Join(out, ","))
	})
	for typ, h := range files {
		mux.HandleFunc("/"+typ+".ndjson", h)
	}
	hs = httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL + "/manifest.json"
}

func run(t *testing.T, manifest string, scopes []string) (importjob.Manifest, []string, *badgerstore.Store) {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	v, err := validate.New()
	require.NoError(t, err)
	params, err := json.Marshal(importjob.Params{ExportURL: manifest, ExportType: importjob.Static, ClientID: "c", Scopes: scopes, FileBase: "http://x/fhir/bulkfiles"})
	require.NoError(t, err)
	dir := t.TempDir()
	out, err := importjob.New(st, v, importjob.Options{}).Run(context.Background(), &job.Record{ID: "j", Params: params}, dir, func(string) {})
	require.NoError(t, err)
	var m importjob.Manifest
	require.NoError(t, json.Unmarshal(out, &m))
	f, err := os.Open(filepath.Join(dir, "OperationOutcome-1.ndjson"))
	require.NoError(t, err)
	defer f.Close()
	var diags []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var oo struct {
			Issue []struct{ Severity, Code, Diagnostics string }
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &oo))
		diags = append(diags, oo.Issue[0].Severity+" "+oo.Issue[0].Code+" "+oo.Issue[0].Diagnostics)
	}
	return m, diags, st
}

func TestBrokenTransferIsReportedAndTheRestKept(t *testing.T) {
	manifest := source(t, map[string]http.HandlerFunc{
		"Patient": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100000")
			fmt.Fprint(w, `{"resourceType":"Patient","id":"a"}`+"\n"+`{"resourceType":"Patient","id":"b"}`+"\n")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-file
		},
	})
	m, diags, _ := run(t, manifest, []string{"system/*.cud"})
	assert.Equal(t, int64(2), m.Extension.Written["Patient"])
	assert.Contains(t, strings.Join(diags, "\n"), "transfer broke off")
}

func TestLinesOutsideTheScopesAreRefused(t *testing.T) {
	manifest := source(t, map[string]http.HandlerFunc{
		"Patient": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"resourceType":"Patient","id":"a"}`+"\n")
		},
		"Observation": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"}}`+"\n")
		},
	})
	m, diags, st := run(t, manifest, []string{"system/Patient.cud"})
	assert.Equal(t, int64(1), m.Extension.Written["Patient"])
	assert.Equal(t, int64(1), m.Extension.Failed)
	assert.Contains(t, strings.Join(diags, "\n"), "error forbidden")
	_, err := st.Read(context.Background(), "Observation", "o")
	assert.Error(t, err, "nothing written outside the scopes")
	require.Len(t, m.Outcome, 1)
	assert.Equal(t, manifest, m.Outcome[0].ManifestURL)
}
