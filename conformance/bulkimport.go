package conformance

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// checkBulkImport loads a static Bulk Data manifest (ping and pull) that
// the suite serves itself: valid lines are written with their ids, the
// invalid one is reported in an OperationOutcome file, and importing the
// same data again changes nothing.
func checkBulkImport(t *testing.T, c *client, run runID) {
	meta := c.do(t, http.MethodGet, "metadata", nil)
	require.Equal(t, http.StatusOK, meta.Status, "%s", meta)
	declared := false
	for _, op := range meta.get("rest.0.operation").Array() {
		declared = declared || op.Get("name").String() == "import"
	}
	if !declared {
		t.Skip("server does not declare $import")
	}
	if u, err := url.Parse(c.base); err != nil || !isLoopback(u.Hostname()) {
		t.Skip("static $import needs the server to fetch from this test's loopback file host")
	}

	family := run.family("Import")
	ids := []string{run.id("imp1"), run.id("imp2"), run.id("imp3")}
	var ndjson bytes.Buffer
	for i, id := range ids {
		p := patient(family, string(rune('A'+i)))
		p["id"] = id
		line, err := json.Marshal(p)
		require.NoError(t, err)
		ndjson.Write(append(line, '\n'))
	}
	ndjson.WriteString(`{"resourceType":"Patient","id":"` + run.id("imp-bad") + `","birthDate":"not-a-date"}` + "\n")

	mux := http.NewServeMux()
	files := httptest.NewServer(mux)
	defer files.Close()
	mux.HandleFunc("/patients.ndjson", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+ndjson")
		_, _ = w.Write(ndjson.Bytes())
	})
	mux.HandleFunc("/manifest.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"transactionTime":     time.Now().UTC().Format(time.RFC3339),
			"request":             files.URL + "/$export",
			"requiresAccessToken": false,
			"output":              []any{map[string]any{"type": "Patient", "url": files.URL + "/patients.ndjson"}},
			"error":               []any{},
		})
	})

	importOnce := func(t *testing.T) gjson.Result {
		params := map[string]any{"resourceType": "Parameters", "parameter": []any{
			map[string]any{"name": "exportUrl", "valueUrl": files.URL + "/manifest.json"},
			map[string]any{"name": "exportType", "valueCode": "static"},
		}}
		r := c.do(t, http.MethodPost, "$import", params, bulkAsync()...)
		require.Equal(t, http.StatusAccepted, r.Status, "%s", r)
		status := r.Header.Get("Content-Location")
		require.Regexp(t, absoluteURL, status)
		return gjson.ParseBytes(pollJob(t, c, "import", status, 60*time.Second).Body)
	}

	t.Run("valid lines are written with their ids, the invalid one reported", func(t *testing.T) {
		m := importOnce(t)
		assert.True(t, m.Get("transactionTime").Exists(), "manifest transactionTime: %s", m.Raw)
		for _, id := range ids {
			got := c.read(t, "Patient", id)
			assert.Equal(t, family, got.Get("name.0.family").String())
		}
		requireOutcome(t, c.do(t, http.MethodGet, "Patient/"+run.id("imp-bad"), nil), http.StatusNotFound)
		reported := false
		for _, o := range m.Get("outcome").Array() {
			f := c.do(t, http.MethodGet, o.Get("url").String(), nil, header{"Accept", "application/fhir+ndjson"})
			require.Equal(t, http.StatusOK, f.Status, "%s", f)
			for _, line := range bytes.Split(f.Body, []byte("\n")) {
				oo := gjson.ParseBytes(line)
				if oo.Get("resourceType").String() == "OperationOutcome" && oo.Get(`issue.#(severity=="error")`).Exists() {
					reported = true
				}
			}
		}
		assert.True(t, reported, "no error OperationOutcome for the invalid line in %s", m.Raw)
	})

	t.Run("importing the same data again changes nothing", func(t *testing.T) {
		importOnce(t)
		for _, id := range ids {
			assert.Equal(t, "1", c.read(t, "Patient", id).Get("meta.versionId").String(), "Patient/%s re-versioned by an identical import", id)
		}
		matches, _ := c.searchAll(t, "Patient?family="+family)
		assert.Len(t, matches, len(ids))
	})
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
