package gapsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/fhir/bulkapi"
	"github.com/equitas/equitas/fhir/gapsapi"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/measures/caregaps"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/store/badgerstore"
)

// env is a real server (badger store in a temp dir, REST server, bulk
// status and file endpoints, $care-gaps) on 127.0.0.1.
type env struct {
	t    testing.TB
	st   *badgerstore.Store
	http *httptest.Server
	base string
}

// testAuth authenticates like the server's provider scoping: a request
// with X-Org is a provider client bound to that organization, seeing its
// attributed patients and its own lists (as cmd/equitas resolves them);
// without it the caller is an unrestricted payer client.
func testAuth(st *badgerstore.Store) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			org := r.Header.Get("X-Org")
			if org == "" {
				next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), access.Anonymous())))
				return
			}
			p := &access.Principal{ClientID: "client-" + org, Scopes: []string{"system/*.read"}, Organization: org}
			gs, err := attribution.OrganizationGroups(r.Context(), st.KV(), org)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			groups := access.Set{}
			for _, g := range gs {
				groups[g.ID] = true
			}
			patients, err := attribution.OrganizationPatients(r.Context(), st.KV(), org, time.Now())
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			p.Restrict(access.Visibility{Patients: access.Set(patients), Groups: groups})
			next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), p)))
		})
	}
}

func newEnv(t testing.TB) *env { return newEnvLimit(t, 150) }

// newEnvLimit is newEnv answering at most maxSync patients synchronously.
func newEnvLimit(t testing.TB, maxSync int) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := badgerstore.Open(context.Background(), filepath.Join(dir, "db"), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	jobs, err := job.NewManager(st.KV(), job.Options{Dir: filepath.Join(dir, "jobs"), TTL: time.Hour})
	require.NoError(t, err)
	auth := testAuth(st)
	srv, err := rest.New(rest.Config{Store: st, MaxBodyBytes: 64 << 20, Authenticate: auth})
	require.NoError(t, err)
	bulkapi.New(st, jobs, srv.Base, false).Mount(srv, auth)
	svc := caregaps.New(st, catalog.New(st, catalog.Options{Logger: slog.New(slog.DiscardHandler)}), caregaps.Options{Reporter: "Organization/payer"})
	jobs.Register(caregaps.JobKind, svc.RunJob)
	gapsapi.New(svc, jobs, srv.Base, gapsapi.Options{SpoolDir: dir, MaxSyncPatients: maxSync}).Mount(srv)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, jobs.Start(ctx))
	hs := httptest.NewServer(srv)
	e := &env{t: t, st: st, http: hs, base: hs.URL + "/fhir"}
	t.Cleanup(func() {
		hs.Close()
		cancel()
		jobs.Wait()
		_ = st.Close()
	})
	return e
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json() gjson.Result { return gjson.ParseBytes(r.body) }

// do sends a request; headers are name, value pairs.
func (e *env) do(method, url, body string, headers ...string) resp {
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
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) post(body []byte) {
	e.t.Helper()
	r := e.do(http.MethodPost, "", string(body))
	require.Equal(e.t, http.StatusOK, r.status, "transaction: %s", r.body)
}

// testCase is one eCQM test case: its patient and expected populations.
type testCase struct {
	measure, dir, patient, description string
	period                             [2]string
	groups                             []map[string]int
}

// ecqm is the content loaded into a server.
type ecqm struct {
	dir      string
	measures []string // measure folder names = Measure ids
	cases    map[string][]testCase
}

// loadECQM loads every measure of ../shared/ecqm (Measure, Library
// closure, ValueSets) and every test case through REST transactions.
// Resource ids repeat across cases, so each case's non-Patient resources
// get a case prefix and references to them are rewritten. CMS165's
// Measure gains a program and a topic so those selectors can be tested.
func loadECQM(t *testing.T, e *env) *ecqm {
	t.Helper()
	dir := filepath.Join(measuretest.SharedDir(t), "ecqm")
	c := &ecqm{dir: dir, cases: map[string][]testCase{}}
	names, err := (measureContent{dir}).names()
	require.NoError(t, err)
	c.measures = names
	ctx := context.Background()
	for _, name := range names {
		rs, err := catalog.ContentResources(ctx, dir, name)
		require.NoError(t, err)
		for i := range rs {
			if rs[i].Type == "Measure" && rs[i].ID == cms165 {
				rs[i].Body, err = sjson.SetRawBytes(rs[i].Body, "useContext", []byte(`[{"code":{"system":"http://terminology.hl7.org/CodeSystem/usage-context-type","code":"program"},"valueCodeableConcept":{"coding":[{"system":"http://hl7.org/fhir/us/cqfmeasures/CodeSystem/quality-programs","code":"mips"}]}}]`))
				require.NoError(t, err)
				rs[i].Body, err = sjson.SetRawBytes(rs[i].Body, "topic", []byte(`[{"coding":[{"system":"http://loinc.org","code":"57024-2"}]}]`))
				require.NoError(t, err)
			}
		}
		b, err := catalog.TransactionBundle(rs)
		require.NoError(t, err)
		e.post(b)
	}
	n := 0
	for _, name := range names {
		dirs, err := filepath.Glob(filepath.Join(dir, "measures", name, "tests", "*"))
		require.NoError(t, err)
		sort.Strings(dirs)
		var entries []json.RawMessage
		for _, cd := range dirs {
			n++
			tc, resources := readCase(t, name, cd, fmt.Sprintf("c%d-", n))
			c.cases[name] = append(c.cases[name], tc)
			entries = append(entries, resources...)
		}
		e.post(transaction(entries))
	}
	return c
}

type measureContent struct{ dir string }

func (m measureContent) names() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(m.dir, "measures"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// readCase reads a test case folder: the expected report and the other
// resources as PUT entries with prefixed ids.
func readCase(t *testing.T, name, dir, prefix string) (testCase, []json.RawMessage) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	sort.Strings(files)
	tc := testCase{measure: name, dir: filepath.Base(dir)}
	var bodies [][]byte
	renames := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		r := gjson.ParseBytes(raw)
		typ, id := r.Get("resourceType").String(), r.Get("id").String()
		if typ == "MeasureReport" {
			tc.period = [2]string{r.Get("period.start").String(), r.Get("period.end").String()}
			tc.description = r.Get(`extension.#(url%"*cqfm-testCaseDescription").valueMarkdown`).String()
			tc.patient = r.Get(`contained.#(resourceType=="Parameters").parameter.#(name=="subject").valueString`).String()
			r.Get("group").ForEach(func(_, g gjson.Result) bool {
				m := map[string]int{}
				g.Get("population").ForEach(func(_, p gjson.Result) bool {
					m[p.Get("code.coding.0.code").String()] = int(p.Get("count").Int())
					return true
				})
				tc.groups = append(tc.groups, m)
				return true
			})
			continue
		}
		if typ != "Patient" {
			renames[typ+"/"+id] = typ + "/" + prefix + id
		}
		bodies = append(bodies, raw)
	}
	require.NotEmpty(t, tc.patient, "case %s names its patient", dir)
	var out []json.RawMessage
	for _, b := range bodies {
		s := string(b)
		for from, to := range renames {
			s = strings.ReplaceAll(s, `"`+from+`"`, `"`+to+`"`)
		}
		r := gjson.Parse(s)
		typ, id := r.Get("resourceType").String(), r.Get("id").String()
		if typ != "Patient" {
			id = prefix + id
			var err error
			s, err = sjson.Set(s, "id", id)
			require.NoError(t, err)
		}
		out = append(out, json.RawMessage(fmt.Sprintf(`{"resource":%s,"request":{"method":"PUT","url":"%s/%s"}}`, s, typ, id)))
	}
	return tc, out
}

func transaction(entries []json.RawMessage) []byte {
	b, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries})
	return b
}

// putGroup stores a plain (non-ATR) Group of patients.
func (e *env) putGroup(id string, patients []string) {
	e.t.Helper()
	var members []string
	for _, p := range patients {
		members = append(members, `{"entity":{"reference":"Patient/`+p+`"}}`)
	}
	body := `{"resourceType":"Group","id":"` + id + `","type":"person","actual":true,"member":[` + strings.Join(members, ",") + `]}`
	r := e.do(http.MethodPut, "/Group/"+id, body)
	require.Contains(e.t, []int{http.StatusOK, http.StatusCreated}, r.status, "%s", r.body)
}

// synthSink collects generated resources as transaction entries and posts
// them through REST in batches.
type synthSink struct {
	e        *env
	entries  []json.RawMessage
	patients []string
}

func (s *synthSink) Write(typ string, line []byte) error {
	id := gjson.GetBytes(line, "id").String()
	if typ == "Patient" {
		s.patients = append(s.patients, id)
	}
	s.entries = append(s.entries, json.RawMessage(fmt.Sprintf(`{"resource":%s,"request":{"method":"PUT","url":"%s/%s"}}`, line, typ, id)))
	if len(s.entries) >= 2000 {
		s.flush()
	}
	return nil
}

func (s *synthSink) flush() {
	if len(s.entries) > 0 {
		s.e.post(transaction(s.entries))
		s.entries = nil
	}
}
