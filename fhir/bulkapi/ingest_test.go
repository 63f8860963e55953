package bulkapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store"
)

func importBody(params ...string) string {
	return `{"resourceType":"Parameters","parameter":[` + strings.Join(params, ",") + `]}`
}

func strParam(name, value string) string {
	return fmt.Sprintf(`{"name":%q,"valueString":%q}`, name, value)
}

// waitJob polls a status URL until it answers 200 and returns the body.
func (e *env) waitJob(status string) gjson.Result {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r := e.do("GET", status, "")
		switch r.status {
		case http.StatusOK:
			return gjson.ParseBytes(r.body)
		case http.StatusAccepted:
			time.Sleep(20 * time.Millisecond)
		default:
			e.t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	e.t.Fatal("job did not finish")
	return gjson.Result{}
}

func (e *env) count(typ string) int64 {
	counts, err := e.st.Counts(context.Background())
	require.NoError(e.t, err)
	return counts[typ]
}

// TestImportPingAndPull imports from another live server's $export, then
// again: the second import writes no new versions.
func TestImportPingAndPull(t *testing.T) {
	src := newEnv(t, envOptions{})
	src.seed(10)
	dst := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name    string
		params  []string
		written int64
	}{
		{"dynamic", []string{strParam("exportUrl", src.base+"/$export"), `{"name":"exportType","valueCode":"dynamic"}`, strParam("_type", "Patient,Observation")}, 30},
		{"dynamic again is idempotent", []string{strParam("exportUrl", src.base+"/$export"), strParam("_type", "Patient,Observation")}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dst.do("POST", "/$import", importBody(tc.params...), "Prefer", "respond-async")
			require.Equal(t, http.StatusAccepted, r.status, string(r.body))
			m := dst.waitJob(r.header.Get("Content-Location"))
			for _, k := range []string{"transactionTime", "request", "requiresAccessToken", "outcome"} {
				assert.True(t, m.Get(k).Exists(), k)
			}
			assert.Equal(t, int64(30), m.Get("extension.read").Int())
			assert.Equal(t, tc.written, m.Get("extension.written.Patient").Int()+m.Get("extension.written.Observation").Int())
			assert.Equal(t, int64(0), m.Get("extension.failed").Int())
			assert.Equal(t, int64(10), dst.count("Patient"))
			assert.Equal(t, int64(20), dst.count("Observation"))
			assert.Equal(t, int64(0), dst.count("Encounter"), "_type was passed to the source export")
		})
	}
	p, err := dst.st.Read(context.Background(), "Patient", "p3")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), p.Version, "re-import of unchanged data keeps version 1")
}

// staticSource serves a finished manifest with a Patient file holding
// good and bad lines.
func staticSource(t *testing.T) *httptest.Server {
	var hs *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/manifest.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"transactionTime":"2026-01-01T00:00:00Z","request":"x","requiresAccessToken":false,"output":[
			{"type":"Patient","url":"%[1]s/Patient.ndjson"},{"type":"Observation","url":"%[1]s/missing.ndjson"}],"error":[]}`, hs.URL)
	})
	mux.HandleFunc("/Patient.ndjson", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Submit-Token") != "" && r.Header.Get("X-Submit-Token") != "s3cret" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+ndjson")
		fmt.Fprint(w, `{"resourceType":"Patient","id":"good1","gender":"female"}
{"resourceType":"Patient","id":"bad1","gender":"purple"}
{"resourceType":"Observation","id":"wrongtype","status":"final","code":{"text":"x"}}
{"resourceType":"Patient","id":
{"resourceType":"Patient","id":"good2","birthDate":"1980-02-03"}
`)
	})
	hs = httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

func TestImportStaticReportsBadLines(t *testing.T) {
	src := staticSource(t)
	e := newEnv(t, envOptions{})
	r := e.do("POST", "/$import", importBody(strParam("exportUrl", src.URL+"/manifest.json"), `{"name":"exportType","valueCode":"static"}`))
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	m := e.waitJob(r.header.Get("Content-Location"))
	assert.Equal(t, int64(2), m.Get("extension.written.Patient").Int())
	assert.Equal(t, int64(3), m.Get("extension.failed").Int())
	assert.Equal(t, int64(2), e.count("Patient"))
	assert.Equal(t, int64(0), e.count("Observation"))

	files := e.download(m.Get("outcome"))
	oos := files["OperationOutcome"]
	require.Len(t, oos, 5, "3 bad lines, 1 unreadable file, 1 summary")
	var diags []string
	for _, oo := range oos {
		diags = append(diags, oo.Get("issue.0.severity").String()+" "+oo.Get("issue.0.diagnostics").String())
	}
	all := strings.Join(diags, "\n")
	for _, want := range []string{"Patient.ndjson line 2", "Patient.ndjson line 3", "Patient.ndjson line 4", "missing.ndjson", "information 2 files"} {
		assert.Contains(t, all, want)
	}
	assert.NotContains(t, all, "line 1:")
	assert.NotContains(t, all, "line 5:")
}

func TestImportRejectsBadRequests(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name, method, body string
		status             int
	}{
		{"GET", "GET", "", http.StatusMethodNotAllowed},
		{"no exportUrl", "POST", importBody(), http.StatusBadRequest},
		{"not http", "POST", importBody(strParam("exportUrl", "file:///etc/passwd")), http.StatusBadRequest},
		{"bad exportType", "POST", importBody(strParam("exportUrl", "http://x/$export"), strParam("exportType", "sideways")), http.StatusBadRequest},
		{"unknown parameter", "POST", importBody(strParam("exportUrl", "http://x/$export"), strParam("color", "red")), http.StatusBadRequest},
		{"not Parameters", "POST", `{"resourceType":"Patient"}`, http.StatusBadRequest},
		{"not JSON", "POST", `{`, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, "/$import", tc.body)
			assert.Equal(t, tc.status, r.status, string(r.body))
			assert.Equal(t, "OperationOutcome", gjson.GetBytes(r.body, "resourceType").String())
		})
	}
}

func TestImportFailsCleanlyWhenTheSourceIsDown(t *testing.T) {
	src := httptest.NewServer(http.NotFoundHandler())
	src.Close()
	e := newEnv(t, envOptions{})
	r := e.do("POST", "/$import", importBody(strParam("exportUrl", src.URL+"/$export")))
	require.Equal(t, http.StatusAccepted, r.status)
	status := r.header.Get("Content-Location")
	require.Eventually(t, func() bool {
		r := e.do("GET", status, "")
		return r.status == http.StatusInternalServerError && gjson.GetBytes(r.body, "resourceType").String() == "OperationOutcome"
	}, 30*time.Second, 20*time.Millisecond)
}

func submitBody(extra ...string) string {
	return importBody(append([]string{`{"name":"submitter","valueIdentifier":{"system":"http://example.org/submitters","value":"ehr-1"}}`,
		strParam("submissionId", "batch-7")}, extra...)...)
}

func TestBulkSubmit(t *testing.T) {
	src := staticSource(t)
	e := newEnv(t, envOptions{})
	manifest := []string{
		fmt.Sprintf(`{"name":"manifestUrl","valueUrl":%q}`, src.URL+"/manifest.json"),
		fmt.Sprintf(`{"name":"fhirBaseUrl","valueUrl":%q}`, src.URL),
		`{"name":"fileRequestHeader","part":[{"name":"headerName","valueString":"X-Submit-Token"},{"name":"headerValue","valueString":"s3cret"}]}`,
	}
	r := e.do("POST", "/$bulk-submit", submitBody(manifest...))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r = e.do("POST", "/$bulk-submit", submitBody(manifest...))
	require.Equal(t, http.StatusOK, r.status, "re-sending a manifest is a no-op")
	assert.Contains(t, gjson.GetBytes(r.body, "issue.0.diagnostics").String(), "1 manifest(s)")

	r = e.do("POST", "/$bulk-submit-status", submitBody())
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	status := r.header.Get("Content-Location")
	require.True(t, strings.HasPrefix(status, e.base+"/bulksubmit/"))
	r = e.do("GET", status, "")
	assert.Equal(t, http.StatusAccepted, r.status, "in progress until the submitter completes it")
	assert.NotEmpty(t, r.header.Get("X-Progress"))

	r = e.do("POST", "/$bulk-submit", submitBody(`{"name":"submissionStatus","valueCoding":{"system":"http://hl7.org/fhir/event-status","code":"completed"}}`))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	m := e.waitJob(status)
	assert.Equal(t, "batch-7", m.Get("submissionId").String())
	require.Len(t, m.Get("outcome").Array(), 1)
	assert.Equal(t, src.URL+"/manifest.json", m.Get("outcome.0.manifestUrl").String())
	assert.Equal(t, int64(4), m.Get(`outcome.0.countSeverity.#(code=="error").count`).Int())
	assert.Equal(t, int64(2), e.count("Patient"), "the file request header was sent")

	r = e.do("POST", "/$bulk-submit", submitBody(manifest...))
	assert.Equal(t, http.StatusConflict, r.status, "no requests after completion")

	bad := []string{
		importBody(strParam("submissionId", "x")),
		submitBody(fmt.Sprintf(`{"name":"manifestUrl","valueUrl":%q}`, src.URL+"/other.json")),
		submitBody(`{"name":"submissionStatus","valueCode":"paused"}`),
	}
	for _, b := range bad {
		r := e.do("POST", "/$bulk-submit", b)
		assert.Equal(t, http.StatusBadRequest, r.status, b)
	}
	r = e.do("POST", "/$bulk-submit-status", importBody(`{"name":"submitter","valueIdentifier":{"value":"nobody"}}`, strParam("submissionId", "x")))
	assert.Equal(t, http.StatusNotFound, r.status)
}

// TestBulkSubmitStoppedUndoesItsData: stopping a submission deletes the
// resources it created and puts back the prior content of those it
// changed; other data is untouched.
func TestBulkSubmitStoppedUndoesItsData(t *testing.T) {
	ctx := context.Background()
	src := staticSource(t)
	e := newEnv(t, envOptions{})
	_, err := e.st.Commit(ctx, store.Tx{Writes: []store.Write{
		{Op: store.OpPut, Type: "Patient", ID: "good1", Body: []byte(`{"resourceType":"Patient","id":"good1","gender":"male"}`)},
		{Op: store.OpPut, Type: "Patient", ID: "other", Body: []byte(`{"resourceType":"Patient","id":"other","gender":"unknown"}`)},
	}})
	require.NoError(t, err)

	r := e.do("POST", "/$bulk-submit", submitBody(
		fmt.Sprintf(`{"name":"manifestUrl","valueUrl":%q}`, src.URL+"/manifest.json"),
		fmt.Sprintf(`{"name":"fhirBaseUrl","valueUrl":%q}`, src.URL)))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Eventually(t, func() bool {
		_, err := e.st.Read(ctx, "Patient", "good2")
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "the submission loads good2")
	cur, err := e.st.Read(ctx, "Patient", "good1")
	require.NoError(t, err)
	require.Equal(t, "female", gjson.GetBytes(cur.Body, "gender").String(), "the submission changed good1")

	r = e.do("POST", "/$bulk-submit", submitBody(`{"name":"submissionStatus","valueCoding":{"system":"http://hl7.org/fhir/event-status","code":"stopped"}}`))
	require.Equal(t, http.StatusOK, r.status, string(r.body))

	for _, tc := range []struct {
		id      string
		gone    bool
		gender  string
		version uint64
	}{
		{id: "good2", gone: true},
		{id: "good1", gender: "male", version: 3},
		{id: "other", gender: "unknown", version: 1},
	} {
		t.Run(tc.id, func(t *testing.T) {
			r, err := e.st.Read(ctx, "Patient", tc.id)
			if tc.gone {
				assert.ErrorIs(t, err, store.ErrDeleted)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.gender, gjson.GetBytes(r.Body, "gender").String())
			assert.Equal(t, tc.version, r.Version)
		})
	}
	r = e.do("POST", "/$bulk-submit-status", submitBody())
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	m := e.waitJob(r.header.Get("Content-Location"))
	assert.Equal(t, "stopped", m.Get("extension.status").String())
	r = e.do("POST", "/$bulk-submit", submitBody(`{"name":"submissionStatus","valueCoding":{"system":"http://hl7.org/fhir/event-status","code":"stopped"}}`))
	assert.Equal(t, http.StatusConflict, r.status, "a stopped submission takes no more requests")
}
