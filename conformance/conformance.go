// Package conformance is a black-box test suite for a FHIR R4 server: it
// speaks only HTTP to a base URL, creates the data it searches for, and
// checks the answers against the FHIR R4 RESTful API (http.html) and search
// (search.html) specifications, plus what Equitas promises on top: its
// search parameters, Bulk Data $export and SMART Backend Services.
//
// Entry points, each a tree of named subtests so a failure names the
// interaction that broke:
//   - Run: the FHIR REST checks at a FHIR base URL;
//   - RunOperational: /healthz and /metrics at the server root;
//   - RunAfter: once Run is done, the server's own metrics must show no 5xx
//     and no recovered panic;
//   - RunSMART: discovery, token endpoint and scopes of a server started
//     with authorization on.
//
// The package's tests run them against a freshly built `equitas serve` (and
// kill, restart and SIGTERM it to check durability), or against EQUITAS_URL
// when it is set.
//
// The suite never assumes an empty server: every resource it creates carries
// a per-run marker (a random family name or identifier system), and every
// search is scoped by it.
package conformance

import (
	"crypto/rand"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Run checks the FHIR R4 REST API at base, the FHIR base URL
// (e.g. http://127.0.0.1:8080/fhir).
func Run(t *testing.T, base string) {
	c := newClient(base)
	run := newRunID()
	t.Logf("conformance run %s against %s", run, c.base)

	t.Run("capability", func(t *testing.T) { checkCapability(t, c, run) })
	t.Run("crud", func(t *testing.T) { checkCRUD(t, c, run) })
	t.Run("history", func(t *testing.T) { checkHistory(t, c, run) })
	t.Run("conditional", func(t *testing.T) { checkConditional(t, c, run) })
	t.Run("bundle", func(t *testing.T) { checkBundles(t, c, run) })
	t.Run("search", func(t *testing.T) { checkSearch(t, c, run) })
	t.Run("fidelity", func(t *testing.T) { checkFidelity(t, c, run) })
	t.Run("concurrency", func(t *testing.T) { checkConcurrency(t, c, run) })
	t.Run("errors", func(t *testing.T) { checkErrors(t, c, run) })
	t.Run("bulk export", func(t *testing.T) { checkBulkExport(t, c, run) })
	t.Run("bulk import", func(t *testing.T) { checkBulkImport(t, c, run) })
}

// RunOperational checks the service endpoints next to the FHIR API at root,
// the server's root URL (e.g. http://127.0.0.1:8080): /healthz and the
// Prometheus /metrics.
func RunOperational(t *testing.T, root string) {
	c := newClient(root)
	t.Run("healthz", func(t *testing.T) {
		r := c.do(t, http.MethodGet, "healthz", nil)
		assert.Equal(t, http.StatusOK, r.Status, "%s", r)
	})
	t.Run("metrics is Prometheus text", func(t *testing.T) {
		r := c.do(t, http.MethodGet, "metrics", nil, header{"Accept", "text/plain"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Contains(t, r.Header.Get("Content-Type"), "text/plain", "%s", r)
		assert.Contains(t, string(r.Body), "# TYPE ", "no metric families: %s", r)
	})
}

// RunAfter checks, once the other checks have run against the same server,
// what the server's own Prometheus metrics say about them: no request ended
// in a 5xx or a recovered panic, and the per-type resource gauge agrees with
// a search count. root is the server's root URL.
func RunAfter(t *testing.T, root string) {
	c := newClient(root)
	r := c.do(t, http.MethodGet, "metrics", nil, header{"Accept", "text/plain"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	samples := parseMetrics(string(r.Body))

	t.Run("no request ended in a 5xx", func(t *testing.T) {
		for _, s := range samples {
			if s.name == "equitas_http_requests_total" && strings.HasPrefix(s.labels["code"], "5") {
				assert.Zero(t, s.value, "%s%v", s.name, s.labels)
			}
		}
	})
	t.Run("no request panicked", func(t *testing.T) {
		for _, s := range samples {
			if s.name == "equitas_http_panics_total" {
				assert.Zero(t, s.value, "recovered panics")
			}
		}
	})
	t.Run("resource gauge agrees with a search count", func(t *testing.T) {
		fc := newClient(strings.TrimRight(root, "/") + "/fhir")
		count := fc.do(t, http.MethodGet, "Patient?_summary=count", nil)
		require.Equal(t, http.StatusOK, count.Status, "%s", count)
		found := false
		for _, s := range samples {
			if s.name == "equitas_store_resources" && s.labels["type"] == "Patient" {
				found = true
				assert.EqualValues(t, count.get("total").Int(), s.value, "equitas_store_resources{type=Patient}")
			}
		}
		assert.True(t, found, "no equitas_store_resources{type=\"Patient\"} sample")
	})
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics reads the sample lines of a Prometheus text exposition;
// label values are assumed free of escaped quotes, which holds for the
// metrics checked here.
func parseMetrics(text string) []sample {
	var out []sample
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		s := sample{name: line[:sp], labels: map[string]string{}, value: v}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			for _, kv := range strings.Split(strings.TrimSuffix(s.name[i+1:], "}"), ",") {
				k, val, ok := strings.Cut(kv, "=")
				if ok {
					s.labels[k] = strings.Trim(val, `"`)
				}
			}
			s.name = s.name[:i]
		}
		out = append(out, s)
	}
	return out
}

// runID returns 10 random lowercase letters: usable inside family names,
// identifier systems and ids, and unique enough to keep runs apart.
type runID string

func newRunID() runID {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return runID(b)
}

// family returns a run-unique family name: "Zq" + run + suffix.
func (r runID) family(suffix string) string { return "Zq" + string(r) + suffix }

// system returns a run-unique identifier system URI.
func (r runID) system(name string) string {
	return "urn:equitas:conformance:" + string(r) + ":" + name
}

// id returns a run-unique client-assigned id (FHIR ids allow [A-Za-z0-9-.]).
func (r runID) id(suffix string) string { return "cf-" + string(r) + "-" + suffix }

// patient builds a minimal Patient with a run-unique family name.
func patient(family string, given ...string) map[string]any {
	name := map[string]any{"family": family}
	if len(given) > 0 {
		name["given"] = given
	}
	return map[string]any{"resourceType": "Patient", "name": []any{name}}
}

// sameSet asserts two id lists hold the same ids, ignoring order, and that
// got has no duplicates.
func sameSet(t testing.TB, want, got []string, msgAndArgs ...any) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for id, n := range seen {
		assert.Equal(t, 1, n, "id %s returned %d times; %v", id, n, msgAndArgs)
	}
	assert.ElementsMatch(t, want, got, msgAndArgs...)
}

// joinIDs makes an OR list of references: "Patient/a,Patient/b".
func joinRefs(typ string, ids ...string) string {
	refs := make([]string, len(ids))
	for i, id := range ids {
		refs[i] = typ + "/" + id
	}
	return strings.Join(refs, ",")
}
