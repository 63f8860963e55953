package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/store/badgerstore"
)

// env is a real server on a real badger store in a temp dir.
type env struct {
	t    testing.TB
	dir  string
	st   *badgerstore.Store
	srv  *rest.Server
	http *httptest.Server
	base string
}

func newEnv(t testing.TB) *env {
	return openEnv(t, t.TempDir())
}

func openEnv(t testing.TB, dir string) *env {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), dir, badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	srv, err := rest.New(rest.Config{Store: st, MaxBodyBytes: 1 << 20})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	e := &env{t: t, dir: dir, st: st, srv: srv, http: hs, base: hs.URL + "/fhir"}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	if e.http != nil {
		e.http.Close()
		e.http = nil
	}
	if e.st != nil {
		_ = e.st.Close()
		e.st = nil
	}
}

type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r resp) get(path string) gjson.Result { return gjson.GetBytes(r.Body, path) }

func (r resp) String() string {
	return http.StatusText(r.Status) + " " + string(r.Body)
}

// do sends a request to a path under the FHIR base (or an absolute URL).
// body may be nil, a string, []byte or anything JSON-encodable; headers
// are name/value pairs.
func (e *env) do(method, path string, body any, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(j)
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = e.base + "/" + strings.TrimPrefix(path, "/")
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(e.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// create POSTs a resource and returns the stored body.
func (e *env) create(res map[string]any) gjson.Result {
	e.t.Helper()
	r := e.do(http.MethodPost, res["resourceType"].(string), res)
	require.Equal(e.t, http.StatusCreated, r.Status, "%s", r)
	return gjson.ParseBytes(r.Body)
}

// searchAll follows next links and returns every match id in order.
func (e *env) searchAll(path string) (ids []string, pages int) {
	e.t.Helper()
	next := path
	for next != "" {
		pages++
		require.Less(e.t, pages, 1000)
		r := e.do(http.MethodGet, next, nil)
		require.Equal(e.t, http.StatusOK, r.Status, "%s", r)
		for _, en := range r.get("entry").Array() {
			if en.Get("search.mode").String() == "match" {
				ids = append(ids, en.Get("resource.id").String())
			}
		}
		next = ""
		for _, l := range r.get("link").Array() {
			if l.Get("relation").String() == "next" {
				next = l.Get("url").String()
			}
		}
	}
	return ids, pages
}

func patient(family string, given ...string) map[string]any {
	if len(given) == 0 {
		given = []string{"Ann"}
	}
	return map[string]any{
		"resourceType": "Patient",
		"name":         []any{map[string]any{"family": family, "given": given}},
		"gender":       "female",
	}
}

func observation(subject string) map[string]any {
	return map[string]any{
		"resourceType": "Observation",
		"status":       "final",
		"code":         map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "4548-4"}}},
		"subject":      map[string]any{"reference": subject},
	}
}

// isOutcome asserts r carries an OperationOutcome.
func isOutcome(t testing.TB, r resp) {
	t.Helper()
	require.Equal(t, "OperationOutcome", r.get("resourceType").String(), "%s", r)
	require.True(t, r.get("issue.0.code").Exists(), "%s", r)
}
