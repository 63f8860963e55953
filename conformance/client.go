package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// fhirJSON is the FHIR JSON media type every request is sent with.
const fhirJSON = "application/fhir+json"

// client talks to one FHIR base URL. It holds no state beyond its
// configuration, so subtests may share it.
type client struct {
	base string // FHIR base, no trailing slash, e.g. http://127.0.0.1:8080/fhir
	http *http.Client
}

func newClient(base string) *client {
	return &client{
		base: strings.TrimRight(base, "/"),
		http: &http.Client{Timeout: 30 * time.Second},
	}
}

// response is a fully read HTTP response.
type response struct {
	Method string
	URL    string
	Status int
	Header http.Header
	Body   []byte
}

// get returns the value at a gjson path of the body.
func (r *response) get(path string) gjson.Result { return gjson.GetBytes(r.Body, path) }

// String describes the exchange for failure messages: request line, status
// and the start of the body.
func (r *response) String() string {
	b := r.Body
	if len(b) > 1500 {
		b = append(append([]byte(nil), b[:1500]...), "..."...)
	}
	return fmt.Sprintf("%s %s -> %d\n%s", r.Method, r.URL, r.Status, b)
}

// header is one extra request header.
type header struct{ name, value string }

// url resolves a path relative to the FHIR base ("Patient/1", "metadata",
// "" for the base itself) or returns an absolute URL unchanged.
func (c *client) url(path string) string {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path
	}
	if path == "" {
		return c.base
	}
	return c.base + "/" + strings.TrimLeft(path, "/")
}

// do sends one request; body may be nil, []byte, string, io.Reader or any
// value that is JSON-encoded. Transport errors fail the test.
func (c *client) do(t testing.TB, method, path string, body any, headers ...header) *response {
	t.Helper()
	resp, err := c.try(t.Context(), method, path, body, headers...)
	require.NoError(t, err, "%s %s", method, path)
	return resp
}

// try is do without the test: for goroutines, which must not call FailNow.
func (c *client) try(ctx context.Context, method, path string, body any, headers ...header) (*response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode request body: %w", err)
		}
		rd = bytes.NewReader(enc)
	}
	u := c.url(path)
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", fhirJSON)
	if rd != nil {
		req.Header.Set("Content-Type", fhirJSON)
	}
	for _, h := range headers {
		req.Header.Set(h.name, h.value)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, u, err)
	}
	return &response{Method: method, URL: u, Status: res.StatusCode, Header: res.Header, Body: data}, nil
}

// create POSTs a resource and requires 201; it returns the created resource
// as the server echoed it, or read back when the server sent no body.
func (c *client) create(t testing.TB, resource map[string]any, headers ...header) gjson.Result {
	t.Helper()
	typ := resource["resourceType"].(string)
	r := c.do(t, http.MethodPost, typ, resource, headers...)
	require.Equal(t, http.StatusCreated, r.Status, "create %s: %s", typ, r)
	return c.bodyOrLocation(t, r)
}

// put PUTs a resource to Type/id and requires 200 or 201.
func (c *client) put(t testing.TB, resource map[string]any, headers ...header) gjson.Result {
	t.Helper()
	path := resource["resourceType"].(string) + "/" + resource["id"].(string)
	r := c.do(t, http.MethodPut, path, resource, headers...)
	require.Contains(t, []int{http.StatusOK, http.StatusCreated}, r.Status, "update %s: %s", path, r)
	return c.bodyOrLocation(t, r)
}

// bodyOrLocation returns the resource in a write response, reading it from
// Location when the server answered with an empty body (Prefer: minimal).
func (c *client) bodyOrLocation(t testing.TB, r *response) gjson.Result {
	t.Helper()
	if len(bytes.TrimSpace(r.Body)) > 0 {
		require.True(t, gjson.ValidBytes(r.Body), "response body is not JSON: %s", r)
		return gjson.ParseBytes(r.Body)
	}
	loc := r.Header.Get("Location")
	require.NotEmpty(t, loc, "write response has neither body nor Location: %s", r)
	rr := c.do(t, http.MethodGet, loc, nil)
	require.Equal(t, http.StatusOK, rr.Status, "read back %s: %s", loc, rr)
	return gjson.ParseBytes(rr.Body)
}

// read GETs Type/id and requires 200.
func (c *client) read(t testing.TB, typ, id string) gjson.Result {
	t.Helper()
	r := c.do(t, http.MethodGet, typ+"/"+id, nil)
	require.Equal(t, http.StatusOK, r.Status, "read %s/%s: %s", typ, id, r)
	return gjson.ParseBytes(r.Body)
}

// searchAll runs a search (path is "Type?query") and follows Bundle.link
// next to the end, returning the ids of the match entries in order and the
// include entries as "Type/id".
func (c *client) searchAll(t testing.TB, path string) (matches, includes []string) {
	t.Helper()
	res, inc := c.searchResources(t, path)
	for _, r := range res {
		matches = append(matches, r.Get("id").String())
	}
	for _, r := range inc {
		includes = append(includes, r.Get("resourceType").String()+"/"+r.Get("id").String())
	}
	return matches, includes
}

// searchResources is searchAll returning the resources themselves.
func (c *client) searchResources(t testing.TB, path string) (matches, includes []gjson.Result) {
	t.Helper()
	next := path
	for page := 0; next != ""; page++ {
		require.Less(t, page, 1000, "search %s: more than 1000 pages; next links loop?", path)
		r := c.do(t, http.MethodGet, next, nil)
		require.Equal(t, http.StatusOK, r.Status, "search %s: %s", path, r)
		require.Equal(t, "Bundle", r.get("resourceType").String(), "search %s: %s", path, r)
		require.Equal(t, "searchset", r.get("type").String(), "search %s: %s", path, r)
		for _, e := range r.get("entry").Array() {
			switch e.Get("search.mode").String() {
			case "include":
				includes = append(includes, e.Get("resource"))
			case "outcome":
			default:
				matches = append(matches, e.Get("resource"))
			}
		}
		next = linkURL(r, "next")
		if next != "" {
			next = c.resolve(r.URL, next)
		}
	}
	return matches, includes
}

// resolve makes a possibly relative link absolute against the request URL.
func (c *client) resolve(from, link string) string {
	base, err := url.Parse(from)
	if err != nil {
		return link
	}
	u, err := base.Parse(link)
	if err != nil {
		return link
	}
	return u.String()
}

// linkURL returns the URL of the Bundle.link with the given relation.
func linkURL(r *response, relation string) string {
	for _, l := range r.get("link").Array() {
		if l.Get("relation").String() == relation {
			return l.Get("url").String()
		}
	}
	return ""
}

// requireOutcome checks an error response: the wanted status (one of
// wants), never a 5xx, and a body that is an OperationOutcome with at least
// one issue carrying a severity and a code.
func requireOutcome(t testing.TB, r *response, wants ...int) {
	t.Helper()
	require.Less(t, r.Status, 500, "server error instead of a 4xx: %s", r)
	require.Contains(t, wants, r.Status, "wrong status: %s", r)
	require.Truef(t, gjson.ValidBytes(r.Body), "error body is not JSON: %s", r)
	require.Equal(t, "OperationOutcome", r.get("resourceType").String(), "error body is not an OperationOutcome: %s", r)
	issues := r.get("issue").Array()
	require.NotEmpty(t, issues, "OperationOutcome without issues: %s", r)
	assert.Contains(t, []string{"fatal", "error", "warning", "information"}, issues[0].Get("severity").String(), "issue.severity: %s", r)
	assert.NotEmpty(t, issues[0].Get("code").String(), "issue.code: %s", r)
}

// etagVersion extracts the version from a weak ETag W/"n".
func etagVersion(etag string) string {
	v := strings.TrimPrefix(etag, "W/")
	return strings.Trim(v, `"`)
}

// weak formats a version as a weak ETag for If-Match.
func weak(version string) string { return `W/"` + version + `"` }
