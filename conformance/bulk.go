package conformance

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// absoluteURL is what Bulk Data requires of Content-Location and output
// URLs (Inferno checks the same pattern).
var absoluteURL = regexp.MustCompile(`^https?://`)

// bulkAsync returns the kick-off headers of Bulk Data v2 §1.2.
func bulkAsync() []header { return []header{{"Accept", fhirJSON}, {"Prefer", "respond-async"}} }

// manifest is a completed export's manifest with its files read.
type manifest struct {
	raw   gjson.Result
	files map[string][]gjson.Result // resource type -> resources over all its files
}

// ids returns "Type/id" of every exported resource.
func (m *manifest) ids() map[string]bool {
	out := map[string]bool{}
	for typ, rs := range m.files {
		for _, r := range rs {
			out[typ+"/"+r.Get("id").String()] = true
		}
	}
	return out
}

// checkBulkExport exercises Bulk Data Access v2.0.0 $export at the system,
// Patient and Group levels when the server declares or serves it.
func checkBulkExport(t *testing.T, c *client, run runID) {
	meta := c.do(t, http.MethodGet, "metadata", nil)
	require.Equal(t, http.StatusOK, meta.Status, "%s", meta)
	declared := false
	for _, op := range meta.get("rest.0.operation").Array() {
		if op.Get("name").String() == "export" {
			declared = true
		}
	}
	probe := c.do(t, http.MethodGet, "$export?_type=Organization&_since=2999-01-01T00:00:00Z", nil, bulkAsync()...)
	switch {
	case probe.Status == http.StatusUnauthorized || probe.Status == http.StatusForbidden:
		t.Skipf("$export needs credentials this suite does not have: %s", probe)
	case !declared && probe.Status == http.StatusNotFound:
		t.Skip("server neither declares nor serves $export")
	}
	t.Run("CapabilityStatement declares export", func(t *testing.T) {
		assert.True(t, declared, "$export answers %d but rest.operation has no export", probe.Status)
		found := false
		for _, u := range meta.get("instantiates").Array() {
			found = found || u.String() == "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
		}
		assert.True(t, found, "instantiates lacks the bulk-data CapabilityStatement")
	})
	require.Equal(t, http.StatusAccepted, probe.Status, "declared $export does not start: %s", probe)

	family := run.family("Bulk")
	p1 := c.create(t, patient(family, "Member")).Get("id").String()
	p2 := c.create(t, patient(family, "Outsider")).Get("id").String()
	o1 := c.create(t, minimalResource("Observation", p1)).Get("id").String()
	o2 := c.create(t, minimalResource("Observation", p2)).Get("id").String()
	group := minimalResource("Group", p1)
	group["member"] = []any{map[string]any{"entity": map[string]any{"reference": "Patient/" + p1}}}
	g := c.create(t, group).Get("id").String()

	t.Run("system export with _type", func(t *testing.T) {
		m := exportAll(t, c, "$export?_type=Patient,Observation")
		for typ := range m.files {
			assert.Contains(t, []string{"Patient", "Observation"}, typ, "type outside _type exported")
		}
		got := m.ids()
		for _, want := range []string{"Patient/" + p1, "Patient/" + p2, "Observation/" + o1, "Observation/" + o2} {
			assert.True(t, got[want], "%s missing from the export", want)
		}
	})

	t.Run("repeated _type equals a comma list", func(t *testing.T) {
		m := exportAll(t, c, "$export?_type=Patient&_type=Observation")
		got := m.ids()
		assert.True(t, got["Patient/"+p1] && got["Observation/"+o1], "repeated _type lost a type: %v", sortedKeys(m.files))
	})

	t.Run("patient-level export", func(t *testing.T) {
		m := exportAll(t, c, "Patient/$export?_type=Observation")
		got := m.ids()
		assert.True(t, got["Observation/"+o1] && got["Observation/"+o2], "patient compartment Observations missing")
	})

	t.Run("group-level export has members only", func(t *testing.T) {
		m := exportAll(t, c, "Group/"+g+"/$export?_type=Patient,Observation")
		got := m.ids()
		assert.True(t, got["Patient/"+p1], "member missing")
		assert.True(t, got["Observation/"+o1], "member's Observation missing")
		assert.False(t, got["Patient/"+p2], "non-member exported")
		assert.False(t, got["Observation/"+o2], "non-member's Observation exported")
	})

	t.Run("_since exports only later changes", func(t *testing.T) {
		first := exportAll(t, c, "$export?_type=Patient")
		since := first.raw.Get("transactionTime").String()
		time.Sleep(10 * time.Millisecond)
		fresh := c.create(t, patient(family, "Later")).Get("id").String()
		m := exportAll(t, c, "$export?_type=Patient&_since="+url.QueryEscape(since))
		got := m.ids()
		assert.True(t, got["Patient/"+fresh], "resource created after _since missing")
		assert.False(t, got["Patient/"+p1], "resource unchanged since _since exported")
	})

	t.Run("_since export lists a later delete only as deleted", func(t *testing.T) {
		victim := c.create(t, patient(family, "Deleted")).Get("id").String()
		first := exportAll(t, c, "$export?_type=Patient")
		require.True(t, first.ids()["Patient/"+victim], "victim not exported before the delete")
		since := first.raw.Get("transactionTime").String()
		time.Sleep(10 * time.Millisecond)
		dr := c.do(t, http.MethodDelete, "Patient/"+victim, nil)
		require.Contains(t, []int{http.StatusOK, http.StatusNoContent}, dr.Status, "%s", dr)
		m := exportAll(t, c, "$export?_type=Patient&_since="+url.QueryEscape(since))
		assert.False(t, m.ids()["Patient/"+victim], "deleted resource in output")
		deleted := m.raw.Get("deleted").Array()
		if len(deleted) == 0 {
			t.Log("manifest has no deleted files (SHOULD, not SHALL)")
			return
		}
		found := false
		for _, d := range deleted {
			f := c.do(t, http.MethodGet, d.Get("url").String(), nil, header{"Accept", "application/fhir+ndjson"})
			require.Equal(t, http.StatusOK, f.Status, "%s", f)
			for _, line := range bytes.Split(f.Body, []byte("\n")) {
				for _, e := range gjson.GetBytes(line, "entry").Array() {
					if e.Get("request.method").String() == "DELETE" && e.Get("request.url").String() == "Patient/"+victim {
						found = true
					}
				}
			}
		}
		assert.True(t, found, "Patient/%s not in the deleted files", victim)
	})

	t.Run("_typeFilter is applied or refused", func(t *testing.T) {
		filter := url.QueryEscape("Patient?family=" + family + "&given=Member")
		r := c.do(t, http.MethodGet, "$export?_type=Patient&_typeFilter="+filter, nil, bulkAsync()...)
		if r.Status != http.StatusAccepted {
			requireOutcome(t, r, http.StatusBadRequest)
			return
		}
		m := exportAll(t, c, "$export?_type=Patient&_typeFilter="+filter)
		got := m.ids()
		assert.True(t, got["Patient/"+p1], "filter match missing")
		assert.False(t, got["Patient/"+p2], "_typeFilter ignored: non-matching Patient exported")
	})

	t.Run("_outputFormat spellings of ndjson are accepted", func(t *testing.T) {
		for _, f := range []string{"application/fhir+ndjson", "application/ndjson", "ndjson"} {
			r := c.do(t, http.MethodGet, "$export?_type=Organization&_since=2999-01-01T00:00:00Z&_outputFormat="+url.QueryEscape(f), nil, bulkAsync()...)
			assert.Equal(t, http.StatusAccepted, r.Status, "_outputFormat=%s: %s", f, r)
		}
	})

	t.Run("kick-off errors are OperationOutcomes", func(t *testing.T) {
		requireOutcome(t, c.do(t, http.MethodGet, "$export?_type=NotAType", nil, bulkAsync()...), http.StatusBadRequest)
		requireOutcome(t, c.do(t, http.MethodGet, "$export?_outputFormat=text/csv", nil, bulkAsync()...), http.StatusBadRequest)
		requireOutcome(t, c.do(t, http.MethodGet, "Group/"+run.id("absent")+"/$export", nil, bulkAsync()...), http.StatusNotFound)
	})

	t.Run("cancelled job's status is 404", func(t *testing.T) {
		r := c.do(t, http.MethodGet, "$export?_type=Patient", nil, bulkAsync()...)
		require.Equal(t, http.StatusAccepted, r.Status, "%s", r)
		status := r.Header.Get("Content-Location")
		d := c.do(t, http.MethodDelete, status, nil)
		assert.Equal(t, http.StatusAccepted, d.Status, "cancel: %s", d)
		requireOutcome(t, c.do(t, http.MethodGet, status, nil, header{"Accept", "application/json"}), http.StatusNotFound)
	})
}

// exportAll kicks off an export, polls it to completion, checks the
// manifest shape and reads every output file.
func exportAll(t *testing.T, c *client, kickoff string) *manifest {
	t.Helper()
	r := c.do(t, http.MethodGet, kickoff, nil, bulkAsync()...)
	require.Equal(t, http.StatusAccepted, r.Status, "kick-off: %s", r)
	status := r.Header.Get("Content-Location")
	require.Regexp(t, absoluteURL, status, "Content-Location must be absolute")

	done := pollJob(t, c, "export "+kickoff, status, 60*time.Second)
	assert.Contains(t, done.Header.Get("Content-Type"), "application/json", "manifest Content-Type")
	raw := gjson.ParseBytes(done.Body)
	for _, k := range []string{"transactionTime", "request", "requiresAccessToken", "output", "error"} {
		require.True(t, raw.Get(k).Exists(), "manifest lacks %s: %s", k, done)
	}
	_, err := time.Parse(time.RFC3339Nano, raw.Get("transactionTime").String())
	assert.NoError(t, err, "transactionTime")
	assert.True(t, raw.Get("output").IsArray() && raw.Get("error").IsArray(), "output and error are arrays")

	m := &manifest{raw: raw, files: map[string][]gjson.Result{}}
	for _, o := range raw.Get("output").Array() {
		typ, u := o.Get("type").String(), o.Get("url").String()
		require.Regexp(t, absoluteURL, u, "output url must be absolute")
		f := c.do(t, http.MethodGet, u, nil, header{"Accept", "application/fhir+ndjson"})
		require.Equal(t, http.StatusOK, f.Status, "file %s: %s", u, f)
		assert.Contains(t, f.Header.Get("Content-Type"), "application/fhir+ndjson", "file Content-Type")
		lines := 0
		sc := bufio.NewScanner(bytes.NewReader(f.Body))
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			lines++
			require.True(t, gjson.ValidBytes(line), "file %s line %d is not JSON", u, lines)
			res := gjson.ParseBytes(line)
			assert.Equal(t, typ, res.Get("resourceType").String(), "file %s holds another type", u)
			m.files[typ] = append(m.files[typ], res)
		}
		require.NoError(t, sc.Err())
		if cnt := o.Get("count"); cnt.Exists() {
			assert.EqualValues(t, lines, cnt.Int(), "output count of %s", u)
		}
	}
	return m
}

// pollJob polls the status URL of an asynchronous request (the FHIR
// asynchronous pattern every bulk operation follows) until it answers 200,
// and returns that answer; any status but 200, 202 and 429 fails the test.
func pollJob(t *testing.T, c *client, what, status string, timeout time.Duration, headers ...header) *response {
	t.Helper()
	headers = append([]header{{"Accept", "application/json"}}, headers...)
	for deadline := time.Now().Add(timeout); ; {
		require.True(t, time.Now().Before(deadline), "%s not complete after %s", what, timeout)
		p := c.do(t, http.MethodGet, status, nil, headers...)
		switch p.Status {
		case http.StatusOK:
			return p
		case http.StatusAccepted, http.StatusTooManyRequests:
			time.Sleep(retryAfter(p.Header.Get("Retry-After")))
		default:
			require.FailNow(t, what+" status poll", "%s", p)
		}
	}
}

// retryAfter turns a Retry-After header into a short poll delay, capped
// at 250ms so the suite stays fast (a 429 answer is retried the same way).
func retryAfter(h string) time.Duration {
	d := 200 * time.Millisecond
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	}
	return min(max(d, 50*time.Millisecond), 250*time.Millisecond)
}
