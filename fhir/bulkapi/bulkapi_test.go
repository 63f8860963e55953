package bulkapi_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/export"
	"github.com/equitas/equitas/bulk/importjob"
	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/bulkapi"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// env is a real server on a real badger store with the bulk endpoints
// mounted, on 127.0.0.1.
type env struct {
	t      *testing.T
	dir    string
	st     *badgerstore.Store
	jobs   *job.Manager
	http   *httptest.Server
	base   string
	cancel context.CancelFunc
}

type envOptions struct {
	minPoll  time.Duration
	fileSize int64
	ttl      time.Duration
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	dir := t.TempDir()
	return openEnv(t, dir, o)
}

func openEnv(t *testing.T, dir string, o envOptions) *env {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), dir+"/db", badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	if o.ttl == 0 {
		o.ttl = time.Hour
	}
	jobs, err := job.NewManager(st.KV(), job.Options{Dir: dir + "/jobs", MinPoll: o.minPoll, TTL: o.ttl, MaxPerOwner: 8})
	require.NoError(t, err)
	srv, err := rest.New(rest.Config{Store: st})
	require.NoError(t, err)
	jobs.Register(export.Kind, export.New(st, export.Options{MaxFileBytes: o.fileSize}).Run)
	bulkapi.New(st, jobs, srv.Base, false).Mount(srv, nil)
	v, err := validate.New()
	require.NoError(t, err)
	jobs.Register(importjob.Kind, importjob.New(st, v, importjob.Options{}).Run)
	bulkapi.NewIngest(jobs, importjob.NewSubmissions(st, jobs), srv.Base, false).Mount(srv)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, jobs.Start(ctx))
	hs := httptest.NewServer(srv)
	e := &env{t: t, dir: dir, st: st, jobs: jobs, http: hs, base: hs.URL + "/fhir", cancel: cancel}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	if e.http == nil {
		return
	}
	e.http.Close()
	e.cancel()
	e.jobs.Wait()
	_ = e.st.Close()
	e.http = nil
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, url string, body string, headers ...string) resp {
	e.t.Helper()
	if !strings.HasPrefix(url, "http") {
		url = e.base + url
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(e.t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	res, err := http.DefaultTransport.RoundTrip(req) // no transparent gunzip
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return resp{res.StatusCode, res.Header, b}
}

// seed stores n patients, each with two Observations and one Encounter,
// plus one Organization (not in any compartment) and a Group of the first
// half of the patients.
func (e *env) seed(n int) {
	e.t.Helper()
	var tx store.Tx
	var members []string
	for i := 0; i < n; i++ {
		pid := fmt.Sprintf("p%d", i)
		tx.Writes = append(tx.Writes,
			store.Write{Op: store.OpPut, Type: "Patient", ID: pid, Body: fmt.Appendf(nil, `{"resourceType":"Patient","id":%q,"gender":"female","birthDate":"1970-01-0%d","name":[{"family":"F%d"}]}`, pid, i%9+1, i)},
			store.Write{Op: store.OpPut, Type: "Observation", ID: pid + "-o1", Body: fmt.Appendf(nil, `{"resourceType":"Observation","id":"%s-o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"subject":{"reference":"Patient/%s"}}`, pid, pid)},
			store.Write{Op: store.OpPut, Type: "Observation", ID: pid + "-o2", Body: fmt.Appendf(nil, `{"resourceType":"Observation","id":"%s-o2","status":"preliminary","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"subject":{"reference":"Patient/%s"}}`, pid, pid)},
			store.Write{Op: store.OpPut, Type: "Encounter", ID: pid + "-e1", Body: fmt.Appendf(nil, `{"resourceType":"Encounter","id":"%s-e1","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/%s"}}`, pid, pid)},
		)
		if i < n/2 {
			members = append(members, fmt.Sprintf(`{"entity":{"reference":"Patient/%s"}}`, pid))
		}
	}
	tx.Writes = append(tx.Writes,
		store.Write{Op: store.OpPut, Type: "Organization", ID: "org1", Body: []byte(`{"resourceType":"Organization","id":"org1","name":"Clinic"}`)},
		store.Write{Op: store.OpPut, Type: "Group", ID: "g1", Body: []byte(`{"resourceType":"Group","id":"g1","type":"person","actual":true,"member":[` + strings.Join(members, ",") + `]}`)},
	)
	_, err := e.st.Commit(context.Background(), tx)
	require.NoError(e.t, err)
}

var kickoffHeaders = []string{"Accept", "application/fhir+json", "Prefer", "respond-async"}

// kickoff starts an export and returns the status URL.
func (e *env) kickoff(method, path, body string, headers ...string) string {
	e.t.Helper()
	r := e.do(method, path, body, append(append([]string{}, kickoffHeaders...), headers...)...)
	require.Equal(e.t, http.StatusAccepted, r.status, string(r.body))
	loc := r.header.Get("Content-Location")
	require.True(e.t, strings.HasPrefix(loc, "http://127.0.0.1:"), "Content-Location must be absolute: %q", loc)
	return loc
}

// wait polls until the job completes and returns the manifest.
func (e *env) wait(status string) gjson.Result {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r := e.do("GET", status, "", "Accept", "application/json")
		switch r.status {
		case http.StatusOK:
			assert.Contains(e.t, r.header.Get("Content-Type"), "application/json")
			assert.NotEmpty(e.t, r.header.Get("Expires"))
			return gjson.ParseBytes(r.body)
		case http.StatusAccepted:
			assert.NotEmpty(e.t, r.header.Get("Retry-After"))
			assert.NotEmpty(e.t, r.header.Get("X-Progress"))
			time.Sleep(20 * time.Millisecond)
		default:
			e.t.Fatalf("status poll: %d %s", r.status, r.body)
		}
	}
	e.t.Fatal("export did not finish")
	return gjson.Result{}
}

// download fetches every file of a manifest section and returns the
// resources by type.
func (e *env) download(files gjson.Result) map[string][]gjson.Result {
	e.t.Helper()
	out := map[string][]gjson.Result{}
	for _, f := range files.Array() {
		url := f.Get("url").String()
		require.Regexp(e.t, `^https?://`, url)
		r := e.do("GET", url, "", "Accept", "application/fhir+ndjson")
		require.Equal(e.t, http.StatusOK, r.status, string(r.body))
		assert.Equal(e.t, "application/fhir+ndjson", r.header.Get("Content-Type"))
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(r.body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			res := gjson.ParseBytes(append([]byte(nil), sc.Bytes()...))
			require.True(e.t, res.IsObject(), "line is not a JSON object: %s", sc.Text())
			require.Equal(e.t, f.Get("type").String(), res.Get("resourceType").String(), "one type per file")
			out[f.Get("type").String()] = append(out[f.Get("type").String()], res)
			n++
		}
		assert.Equal(e.t, int(f.Get("count").Int()), n, "manifest count of %s", url)
	}
	return out
}

func ids(rs []gjson.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Get("id").String())
	}
	return out
}

func TestSystemExportMatchesStore(t *testing.T) {
	e := newEnv(t, envOptions{fileSize: 2048})
	e.seed(20)
	status := e.kickoff("GET", "/$export", "")
	m := e.wait(status)
	for _, k := range []string{"transactionTime", "request", "requiresAccessToken", "output", "error"} {
		assert.True(t, m.Get(k).Exists(), "manifest key %s", k)
	}
	assert.Equal(t, e.base+"/$export", m.Get("request").String())
	assert.False(t, m.Get("requiresAccessToken").Bool())
	got := e.download(m.Get("output"))
	counts, err := e.st.Counts(context.Background())
	require.NoError(t, err)
	for typ, n := range counts {
		if n > 0 {
			assert.Len(t, got[typ], int(n), typ)
		}
	}
	assert.Greater(t, len(m.Get("output").Array()), len(got), "2 KiB files split each type into several")
	// Each resource appears once.
	seen := map[string]bool{}
	for typ, rs := range got {
		for _, id := range ids(rs) {
			assert.False(t, seen[typ+"/"+id], "duplicate %s/%s", typ, id)
			seen[typ+"/"+id] = true
		}
	}
}

func TestExportIsASnapshot(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.seed(4)
	status := e.kickoff("GET", "/$export?_type=Patient", "")
	m := e.wait(status)
	tt, err := time.Parse(time.RFC3339Nano, m.Get("transactionTime").String())
	require.NoError(t, err)
	// A write after the transaction time is not in the files even when
	// they are downloaded later.
	_, err = e.st.Commit(context.Background(), store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: "late",
		Body: []byte(`{"resourceType":"Patient","id":"late"}`)}}})
	require.NoError(t, err)
	got := e.download(m.Get("output"))
	assert.NotContains(t, ids(got["Patient"]), "late")
	for _, p := range got["Patient"] {
		lu, err := time.Parse(time.RFC3339Nano, p.Get("meta.lastUpdated").String())
		require.NoError(t, err)
		assert.False(t, lu.After(tt), "resource newer than transactionTime")
	}
}

func TestPatientAndGroupExport(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.seed(10)
	tests := []struct {
		name         string
		method, path string
		body         string
		patients     int
		types        []string
	}{
		{name: "Patient GET", method: "GET", path: "/Patient/$export", patients: 10, types: []string{"Patient", "Observation", "Encounter"}},
		{name: "Group GET", method: "GET", path: "/Group/g1/$export", patients: 5, types: []string{"Patient", "Observation", "Encounter"}},
		{name: "Group POST _type", method: "POST", path: "/Group/g1/$export", patients: 5, types: []string{"Patient"},
			body: `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient"}]}`},
		{name: "Patient POST patient", method: "POST", path: "/Patient/$export", patients: 2, types: []string{"Patient", "Observation", "Encounter"},
			body: `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/p1"}},{"name":"patient","valueReference":{"reference":"Patient/p7"}}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := e.wait(e.kickoff(tc.method, tc.path, tc.body))
			got := e.download(m.Get("output"))
			assert.Len(t, got["Patient"], tc.patients)
			assert.NotContains(t, got, "Organization", "not in the patient compartment")
			for _, typ := range tc.types {
				assert.NotEmpty(t, got[typ], typ)
			}
			if slicesContain(tc.types, "Observation") {
				assert.Len(t, got["Observation"], 2*tc.patients)
				pats := map[string]bool{}
				for _, id := range ids(got["Patient"]) {
					pats["Patient/"+id] = true
				}
				for _, o := range got["Observation"] {
					assert.True(t, pats[o.Get("subject.reference").String()], "observation of an exported patient")
				}
			}
		})
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestKickoffParameters(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.seed(6)
	before := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	_, err := e.st.Commit(context.Background(), store.Tx{Writes: []store.Write{
		{Op: store.OpPut, Type: "Patient", ID: "p0", Body: []byte(`{"resourceType":"Patient","id":"p0","gender":"male"}`)},
		{Op: store.OpDelete, Type: "Patient", ID: "p1"},
	}})
	require.NoError(t, err)
	since := before.Format(time.RFC3339Nano)

	for _, f := range []string{"application/fhir+ndjson", "application/ndjson", "ndjson"} {
		t.Run("_outputFormat="+f, func(t *testing.T) {
			e.wait(e.kickoff("GET", "/$export?_type=Patient&_outputFormat="+urlq(f), ""))
		})
	}
	t.Run("repeated _type is comma-joined", func(t *testing.T) {
		got := e.download(e.wait(e.kickoff("GET", "/$export?_type=Patient&_type=Encounter", "")).Get("output"))
		assert.Len(t, got, 2)
		assert.Len(t, got["Encounter"], 6)
	})
	t.Run("_since lists changes and deletions", func(t *testing.T) {
		m := e.wait(e.kickoff("GET", "/$export?_type=Patient&_since="+urlq(since), ""))
		got := e.download(m.Get("output"))
		assert.Equal(t, []string{"p0"}, ids(got["Patient"]))
		del := e.download(m.Get("deleted"))
		require.Len(t, del["Bundle"], 1)
		assert.Equal(t, "DELETE", del["Bundle"][0].Get("entry.0.request.method").String())
		assert.Equal(t, "Patient/p1", del["Bundle"][0].Get("entry.0.request.url").String())
	})
	t.Run("_elements subsets and tags", func(t *testing.T) {
		got := e.download(e.wait(e.kickoff("GET", "/$export?_type=Patient,Observation&_elements=Patient.gender,Observation.subject", "")).Get("output"))
		require.NotEmpty(t, got["Patient"])
		p := got["Patient"][0]
		assert.True(t, p.Get("gender").Exists())
		assert.False(t, p.Get("name").Exists())
		assert.Equal(t, "SUBSETTED", p.Get("meta.tag.#(code==SUBSETTED).code").String())
		o := got["Observation"][0]
		assert.True(t, o.Get("subject").Exists())
		assert.True(t, o.Get("status").Exists(), "mandatory elements are kept")
		assert.True(t, o.Get("code").Exists(), "mandatory elements are kept")
	})
	t.Run("_typeFilter ORs queries per type", func(t *testing.T) {
		f := urlq("Observation?status=final") + "," + urlq("Observation?code=http://loinc.org|8480-6&subject=Patient/p2")
		got := e.download(e.wait(e.kickoff("GET", "/$export?_type=Observation,Encounter&_typeFilter="+urlq(f), "")).Get("output"))
		assert.Len(t, got["Observation"], 7, "6 final ones and p2's preliminary one")
		assert.Len(t, got["Encounter"], 6, "types without a filter are whole")
	})
	t.Run("includeAssociatedData", func(t *testing.T) {
		e.wait(e.kickoff("GET", "/Patient/$export?includeAssociatedData=LatestProvenanceResources", ""))
	})
	t.Run("POST Parameters with every parameter", func(t *testing.T) {
		body := `{"resourceType":"Parameters","parameter":[
			{"name":"_outputFormat","valueString":"application/fhir+ndjson"},
			{"name":"_since","valueInstant":"2000-01-01T00:00:00Z"},
			{"name":"_type","valueString":"Patient"},{"name":"_type","valueString":"Observation"},
			{"name":"_elements","valueString":"id"},
			{"name":"_typeFilter","valueString":"Observation%3Fstatus%3Dfinal"},
			{"name":"includeAssociatedData","valueCode":"RelevantProvenanceResources"},
			{"name":"patient","valueReference":{"reference":"Patient/p2"}}]}`
		m := e.wait(e.kickoff("POST", "/Group/g1/$export", body))
		assert.Equal(t, e.base+"/Group/g1/$export", m.Get("request").String())
		got := e.download(m.Get("output"))
		assert.Equal(t, []string{"p2"}, ids(got["Patient"]))
		assert.Equal(t, []string{"p2-o1"}, ids(got["Observation"]))
		assert.False(t, got["Patient"][0].Get("gender").Exists())
	})
	t.Run("a patient outside the group is reported", func(t *testing.T) {
		body := `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/p5"}}]}`
		m := e.wait(e.kickoff("POST", "/Group/g1/$export", body))
		assert.Empty(t, m.Get("output").Array())
		errs := e.download(m.Get("error"))
		require.Len(t, errs["OperationOutcome"], 1)
		assert.Contains(t, errs["OperationOutcome"][0].Get("issue.0.diagnostics").String(), "Patient/p5")
	})

	bad := []struct{ name, path string }{
		{"unknown parameter", "/$export?_foo=1"},
		{"unknown type", "/$export?_type=Nonsense"},
		{"unsupported format", "/$export?_outputFormat=text/csv"},
		{"bad _since", "/$export?_since=yesterday"},
		{"patient on GET", "/Patient/$export?patient=Patient/p1"},
		{"_typeFilter with _include", "/$export?_typeFilter=" + urlq("Observation?_include=Observation:subject")},
		{"unknown includeAssociatedData", "/$export?includeAssociatedData=_custom"},
		{"unknown group", "/Group/nope/$export"},
		{"non-compartment type at Patient level", "/Patient/$export?_type=Organization"},
		{"non-compartment type at Group level", "/Group/g1/$export?_type=Patient,Organization"},
	}
	for _, tc := range bad {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			r := e.do("GET", tc.path, "", kickoffHeaders...)
			assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, r.status, string(r.body))
			assert.Equal(t, "OperationOutcome", gjson.GetBytes(r.body, "resourceType").String())
		})
	}
	t.Run("lenient handling reports ignored parameters in error files", func(t *testing.T) {
		m := e.wait(e.kickoff("GET", "/$export?_type=Patient&_foo=1&_outputFormat=text/csv", "", "Prefer", "respond-async, handling=lenient"))
		errs := e.download(m.Get("error"))
		assert.Len(t, errs["OperationOutcome"], 2)
		assert.NotEmpty(t, m.Get("output").Array())
	})
	t.Run("missing Prefer and Accept are treated as sent", func(t *testing.T) {
		r := e.do("GET", "/$export?_type=Patient", "")
		assert.Equal(t, http.StatusAccepted, r.status, string(r.body))
	})
	t.Run("malformed POST body", func(t *testing.T) {
		r := e.do("POST", "/$export", `{"resourceType":"Parameters","parameter":[{"name":"_type"}]}`, kickoffHeaders...)
		assert.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	})
}

func urlq(s string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3F", "=", "%3D", "&", "%26", "|", "%7C", ",", "%2C", "/", "%2F", ":", "%3A", "+", "%2B")
	return r.Replace(s)
}

func TestCancelThenNotFound(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.seed(3)
	status := e.kickoff("GET", "/$export", "")
	r := e.do("DELETE", status, "")
	assert.Equal(t, http.StatusAccepted, r.status, string(r.body))
	r = e.do("GET", status, "")
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "OperationOutcome", gjson.GetBytes(r.body, "resourceType").String())
	r = e.do("DELETE", status, "")
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestPollingTooFastGets429(t *testing.T) {
	e := newEnv(t, envOptions{minPoll: time.Hour})
	e.seed(1)
	// The first poll normally finds the one-patient export unfinished (20
	// of 20 runs on the 2-core dev machine); if it has finished, 429 does
	// not apply and the test skips rather than fail.
	status := e.kickoff("GET", "/$export", "")
	first := e.do("GET", status, "")
	require.Contains(t, []int{http.StatusAccepted, http.StatusOK}, first.status)
	if first.status == http.StatusOK {
		t.Skip("export finished before the second poll; 429 applies to unfinished jobs")
	}
	second := e.do("GET", status, "")
	assert.Equal(t, http.StatusTooManyRequests, second.status)
	assert.NotEmpty(t, second.header.Get("Retry-After"))
}

func TestGzipDownload(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.seed(5)
	m := e.wait(e.kickoff("GET", "/$export?_type=Observation", ""))
	url := m.Get("output.0.url").String()
	r := e.do("GET", url, "", "Accept-Encoding", "gzip")
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "gzip", r.header.Get("Content-Encoding"))
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, 10, bytes.Count(plain, []byte("\n")))
	r = e.do("GET", url, "", "Accept-Encoding", "gzip;q=0, identity")
	require.Equal(t, http.StatusOK, r.status)
	assert.Empty(t, r.header.Get("Content-Encoding"), "q=0 refuses gzip")
	assert.Equal(t, plain, r.body)
	// Unknown files and path tricks are 404, not 500.
	for _, bad := range []string{strings.Replace(url, "Observation-1", "Observation-9", 1), strings.Replace(url, "Observation-1.ndjson", "..%2F..%2Fetc", 1)} {
		assert.Equal(t, http.StatusNotFound, e.do("GET", bad, "").status, bad)
	}
}

func TestCapabilityStatementDeclaresExport(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do("GET", "/metadata", "")
	require.Equal(t, http.StatusOK, r.status)
	cs := gjson.ParseBytes(r.body)
	assert.Equal(t, bulkapi.SystemExportDefinition, cs.Get(`rest.0.operation.#(name=="export").definition`).String())
	assert.Equal(t, bulkapi.PatientExportDefinition, cs.Get(`rest.0.resource.#(type=="Patient").operation.#(name=="export").definition`).String())
	assert.Equal(t, bulkapi.GroupExportDefinition, cs.Get(`rest.0.resource.#(type=="Group").operation.#(name=="export").definition`).String())
	assert.Equal(t, bulkapi.BulkDataCapabilityStatement, cs.Get("instantiates.0").String())
	for _, op := range []string{"import", "bulk-submit", "bulk-submit-status"} {
		assert.True(t, cs.Get(`rest.0.operation.#(name=="`+op+`")`).Exists(), op)
	}
}

// TestRestartMidJob stops the server while a job is queued and unfinished
// (its attempt left a partial file behind) and starts it again: the job
// runs again from the start into a clean directory.
func TestRestartMidJob(t *testing.T) {
	dir := t.TempDir()
	e := openEnv(t, dir, envOptions{})
	e.seed(8)
	e.close()

	// Record a job as a crashed server leaves it: in progress, one attempt
	// made, a truncated file on disk.
	st, err := badgerstore.Open(context.Background(), dir+"/db", badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	jobs, err := job.NewManager(st.KV(), job.Options{Dir: dir + "/jobs"})
	require.NoError(t, err)
	jobs.Register(export.Kind, func(ctx context.Context, _ *job.Record, _ string, _ func(string)) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	params, _ := json.Marshal(export.Params{Level: export.System, ClientID: "anonymous", Scopes: []string{"system/*.*"},
		FileBase: "http://placeholder/fhir/bulkfiles"})
	rec, err := jobs.Submit(context.Background(), export.Kind, "anonymous", "http://placeholder/fhir/$export", json.RawMessage(params))
	require.NoError(t, err)
	require.NoError(t, st.Close())

	require.NoError(t, writeFile(dir+"/jobs/"+rec.ID+"/Patient-1.ndjson", `{"resourceType":"Pat`))
	e = openEnv(t, dir, envOptions{})
	m := e.wait(e.base + "/bulkstatus/" + rec.ID)
	got := map[string]int{}
	for _, f := range m.Get("output").Array() {
		got[f.Get("type").String()] += int(f.Get("count").Int())
	}
	assert.Equal(t, 8, got["Patient"])
	assert.Equal(t, 16, got["Observation"])
}

func TestExpiredJobsAreGone(t *testing.T) {
	e := newEnv(t, envOptions{ttl: 50 * time.Millisecond})
	e.seed(1)
	status := e.kickoff("GET", "/$export?_type=Patient", "")
	m := e.wait(status)
	file := m.Get("output.0.url").String()
	require.Equal(t, http.StatusOK, e.do("GET", file, "").status)
	time.Sleep(60 * time.Millisecond)
	n, err := e.jobs.Expire(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, http.StatusNotFound, e.do("GET", status, "").status)
	assert.Equal(t, http.StatusNotFound, e.do("GET", file, "").status)
	_, err = os.Stat(e.jobs.Dir(strings.TrimPrefix(status, e.base+"/bulkstatus/")))
	assert.True(t, os.IsNotExist(err), "files removed")
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o600)
}
