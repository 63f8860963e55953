package measureapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/bulkapi"
	"github.com/equitas/equitas/fhir/measureapi"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/measures/patientsource"
	"github.com/equitas/equitas/store/badgerstore"
)

// env is a real server (REST API, bulk status/file endpoints, measure
// operations) on a real badger store, on 127.0.0.1.
type env struct {
	t    *testing.T
	st   *badgerstore.Store
	jobs *job.Manager
	http *httptest.Server
	base string
}

type envOptions struct {
	asyncOver int
	reporter  string
	// principal, when set, authenticates every request as this caller.
	principal *access.Principal
	// store, when set, is served instead of a new one (without async jobs).
	store *badgerstore.Store
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	dir := t.TempDir()
	st := o.store
	if st == nil {
		var err error
		st, err = badgerstore.Open(context.Background(), filepath.Join(dir, "db"), badgerstore.Options{NoSync: true})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
	}
	cfg := rest.Config{Store: st}
	if o.principal != nil {
		cfg.Authenticate = func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p := *o.principal
				next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), &p)))
			})
		}
	}
	srv, err := rest.New(cfg)
	require.NoError(t, err)
	var jobs *job.Manager
	if o.store == nil {
		jobs, err = job.NewManager(st.KV(), job.Options{Dir: filepath.Join(dir, "jobs"), TTL: time.Hour, MaxPerOwner: 8})
		require.NoError(t, err)
		bulkapi.New(st, jobs, srv.Base, false).Mount(srv, nil)
	}
	h, err := measureapi.New(measureapi.Options{Catalog: catalog.New(st, catalog.Options{}), Store: st, Jobs: jobs,
		Base: srv.Base, AsyncOver: o.asyncOver, Reporter: o.reporter, ReporterDisplay: "Equitas test", TempDir: dir})
	require.NoError(t, err)
	h.Mount(srv)
	ctx, cancel := context.WithCancel(context.Background())
	if jobs != nil {
		require.NoError(t, jobs.Start(ctx))
	}
	hs := httptest.NewServer(srv)
	e := &env{t: t, st: st, jobs: jobs, http: hs, base: hs.URL + "/fhir"}
	t.Cleanup(func() {
		hs.Close()
		cancel()
		if jobs != nil {
			jobs.Wait()
		}
	})
	return e
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(path string) gjson.Result { return gjson.GetBytes(r.body, path) }

func (e *env) do(method, path string, body []byte, header ...string) response {
	e.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = e.base + path
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Accept", "application/fhir+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return response{status: res.StatusCode, header: res.Header, body: raw}
}

func (e *env) get(path string, q url.Values, header ...string) response {
	e.t.Helper()
	if q != nil {
		path += "?" + q.Encode()
	}
	return e.do(http.MethodGet, path, nil, header...)
}

// post sends a Parameters resource built from name/value pairs (values
// as valueString, which every primitive parameter accepts here).
func (e *env) postParams(path string, pairs [][2]string, header ...string) response {
	e.t.Helper()
	type p struct {
		Name        string `json:"name"`
		ValueString string `json:"valueString"`
	}
	ps := struct {
		ResourceType string `json:"resourceType"`
		Parameter    []p    `json:"parameter"`
	}{ResourceType: "Parameters"}
	for _, kv := range pairs {
		ps.Parameter = append(ps.Parameter, p{kv[0], kv[1]})
	}
	raw, err := json.Marshal(ps)
	require.NoError(e.t, err)
	return e.do(http.MethodPost, path, raw, header...)
}

// transaction POSTs a transaction Bundle and requires success.
func (e *env) transaction(bundle []byte) {
	e.t.Helper()
	res := e.do(http.MethodPost, "", bundle)
	require.Equal(e.t, http.StatusOK, res.status, "transaction: %s", truncate(res.body))
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

func ecqmDir(t *testing.T) string { return filepath.Join(measuretest.SharedDir(t), "ecqm") }

// loadMeasure loads one measure's content through the REST API.
func (e *env) loadMeasure(name string) {
	e.t.Helper()
	rs, err := catalog.ContentResources(context.Background(), ecqmDir(e.t), name)
	require.NoError(e.t, err)
	b, err := catalog.TransactionBundle(rs)
	require.NoError(e.t, err)
	e.transaction(b)
}

// testCase is one official test patient and its expected populations.
type testCase struct {
	dir, patient string
	// expected counts per group (in order) per population code.
	expected []map[string]int
	period   [2]string
}

// knownDataDefects are test cases whose expected report the content itself
// contradicts (see ../shared/reference/measure-engine.md).
var knownDataDefects = map[string]string{
	"8956ebb5-d3c0-4112-a34a-200961713efd": "HbA1c Observation value is a CodeableConcept",
	"6630d394-c81d-42f5-a218-40b73a2a4949": "GMI Observation value is a CodeableConcept",
}

// loadCases loads a measure's test patients through the REST API (one
// transaction per case, ids made unique by the case prefix, references
// rewritten) and returns the cases.
func (e *env) loadCases(name string) []testCase { return e.loadSomeCases(name, 0) }

// loadSomeCases loads the first n cases (all when n is 0).
func (e *env) loadSomeCases(name string, n int) []testCase {
	e.t.Helper()
	dirs, err := filepath.Glob(filepath.Join(ecqmDir(e.t), "measures", name, "tests", "*"))
	require.NoError(e.t, err)
	require.NotEmpty(e.t, dirs)
	if n > 0 && n < len(dirs) {
		dirs = dirs[:n]
	}
	var cases []testCase
	for _, dir := range dirs {
		tc := readCase(e.t, dir)
		p, err := patientsource.ReadFolder(dir)
		require.NoError(e.t, err)
		e.transaction(caseBundle(e.t, filepath.Base(dir)[:8], p))
		cases = append(cases, tc)
	}
	return cases
}

func readCase(t *testing.T, dir string) testCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "MeasureReport-*.json"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	raw, err := os.ReadFile(files[0])
	require.NoError(t, err)
	tc := testCase{dir: dir}
	tc.patient = gjson.GetBytes(raw, `contained.#(resourceType=="Parameters").parameter.#(name=="subject").valueString`).String()
	require.NotEmpty(t, tc.patient, dir)
	tc.period = [2]string{gjson.GetBytes(raw, "period.start").String(), gjson.GetBytes(raw, "period.end").String()}
	gjson.GetBytes(raw, "group").ForEach(func(_, g gjson.Result) bool {
		counts := map[string]int{}
		g.Get("population").ForEach(func(_, p gjson.Result) bool {
			counts[p.Get("code.coding.0.code").String()] += int(p.Get("count").Int())
			return true
		})
		tc.expected = append(tc.expected, counts)
		return true
	})
	return tc
}

// caseBundle is a transaction of PUTs for one case's resources, every
// non-Patient id prefixed and references rewritten to match.
func caseBundle(t *testing.T, prefix string, p *patientsource.Patient) []byte {
	t.Helper()
	renames := map[string]string{}
	type res struct {
		typ string
		m   map[string]any
	}
	var all []res
	types := make([]string, 0, len(p.Resources))
	for typ := range p.Resources {
		types = append(types, typ)
	}
	sort.Strings(types)
	for _, typ := range types {
		for _, raw := range p.Resources[typ] {
			var m map[string]any
			require.NoError(t, json.Unmarshal(raw, &m))
			if id, _ := m["id"].(string); id != "" && typ != "Patient" {
				m["id"] = prefix + "-" + id
				renames[`"`+typ+"/"+id+`"`] = `"` + typ + "/" + prefix + "-" + id + `"`
			}
			all = append(all, res{typ, m})
		}
	}
	var entries []string
	for _, r := range all {
		b, err := json.Marshal(r.m)
		require.NoError(t, err)
		for from, to := range renames {
			b = bytes.ReplaceAll(b, []byte(from), []byte(to))
		}
		entries = append(entries, `{"resource":`+string(b)+`,"request":{"method":"PUT","url":"`+r.typ+"/"+r.m["id"].(string)+`"}}`)
	}
	return []byte(`{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
