package conformance

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newUUID returns a random RFC 4122 version 4 UUID for urn:uuid fullUrls.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// entry builds a Bundle.entry.
func entry(fullURL string, resource map[string]any, method, url string) map[string]any {
	e := map[string]any{"request": map[string]any{"method": method, "url": url}}
	if fullURL != "" {
		e["fullUrl"] = fullURL
	}
	if resource != nil {
		e["resource"] = resource
	}
	return e
}

func bundle(typ string, entries ...map[string]any) map[string]any {
	list := make([]any, len(entries))
	for i, e := range entries {
		list[i] = e
	}
	return map[string]any{"resourceType": "Bundle", "type": typ, "entry": list}
}

// statusCode reads the leading number of Bundle.entry.response.status
// ("201 Created" -> 201).
func statusCode(s string) int {
	n, _ := strconv.Atoi(strings.Fields(s + " ")[0])
	return n
}

// idFromLocation returns the id in "[base/]Type/id[/_history/v]".
func idFromLocation(loc, typ string) string {
	i := strings.Index(loc, typ+"/")
	if i < 0 {
		return ""
	}
	rest := loc[i+len(typ)+1:]
	if j := strings.Index(rest, "/"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func checkBundles(t *testing.T, c *client, run runID) {
	t.Run("transaction rewrites urn:uuid references to the new ids", func(t *testing.T) {
		family := run.family("TxOk")
		pURN, eURN, oURN := "urn:uuid:"+newUUID(), "urn:uuid:"+newUUID(), "urn:uuid:"+newUUID()
		putID := run.id("tx-put")
		obs := minimalResource("Observation", "placeholder")
		obs["subject"] = map[string]any{"reference": pURN}
		obs["encounter"] = map[string]any{"reference": eURN}
		enc := minimalResource("Encounter", "placeholder")
		enc["subject"] = map[string]any{"reference": pURN}
		put := patient(family, "Put")
		put["id"] = putID
		// The Observation comes first: references may point forward.
		tx := bundle("transaction",
			entry(oURN, obs, "POST", "Observation"),
			entry(pURN, patient(family, "Tx"), "POST", "Patient"),
			entry(eURN, enc, "POST", "Encounter"),
			entry("", put, "PUT", "Patient/"+putID),
		)
		r := c.do(t, http.MethodPost, "", tx)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		require.Equal(t, "transaction-response", r.get("type").String(), "%s", r)
		entries := r.get("entry").Array()
		require.Len(t, entries, 4, "one response entry per request entry: %s", r)
		types := []string{"Observation", "Patient", "Encounter", "Patient"}
		ids := make([]string, 4)
		for i, e := range entries {
			assert.Equal(t, http.StatusCreated, statusCode(e.Get("response.status").String()), "entry %d: %s", i, e.Raw)
			loc := e.Get("response.location").String()
			ids[i] = idFromLocation(loc, types[i])
			require.NotEmpty(t, ids[i], "entry %d location %q", i, loc)
		}
		assert.Equal(t, putID, ids[3], "PUT keeps the client id")
		got := c.read(t, "Observation", ids[0])
		assert.Equal(t, "Patient/"+ids[1], got.Get("subject.reference").String(), "subject not rewritten")
		assert.Equal(t, "Encounter/"+ids[2], got.Get("encounter.reference").String(), "encounter not rewritten")
		assert.Equal(t, "Patient/"+ids[1], c.read(t, "Encounter", ids[2]).Get("subject.reference").String())
		matches, _ := c.searchAll(t, "Observation?subject=Patient/"+ids[1])
		assert.Equal(t, []string{ids[0]}, matches, "search by the rewritten reference")
	})

	t.Run("transaction rewrites urn:uuid wherever it appears", func(t *testing.T) {
		// http.html transaction processing: servers SHALL replace all
		// matching links in the bundle: references, elements of type uri
		// and url, and <a href> / <img src> in the narrative.
		pURN := "urn:uuid:" + newUUID()
		obs := minimalResource("Observation", "placeholder")
		obs["subject"] = map[string]any{"reference": pURN}
		obs["text"] = map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml"><a href="` + pURN + `">patient</a></div>`}
		obs["extension"] = []any{
			map[string]any{"url": "http://example.org/fhir/StructureDefinition/ref", "valueReference": map[string]any{"reference": pURN}},
			map[string]any{"url": "http://example.org/fhir/StructureDefinition/uri", "valueUri": pURN},
		}
		doc := map[string]any{"resourceType": "DocumentReference", "status": "current", "content": []any{map[string]any{"attachment": map[string]any{"url": pURN}}}}
		r := c.do(t, http.MethodPost, "", bundle("transaction",
			entry(pURN, patient(run.family("TxLinks")), "POST", "Patient"),
			entry("urn:uuid:"+newUUID(), obs, "POST", "Observation"),
			entry("urn:uuid:"+newUUID(), doc, "POST", "DocumentReference"),
		))
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		entries := r.get("entry").Array()
		require.Len(t, entries, 3, "%s", r)
		pid := idFromLocation(entries[0].Get("response.location").String(), "Patient")
		got := c.read(t, "Observation", idFromLocation(entries[1].Get("response.location").String(), "Observation"))
		gotDoc := c.read(t, "DocumentReference", idFromLocation(entries[2].Get("response.location").String(), "DocumentReference"))
		want := "Patient/" + pid
		t.Run("reference", func(t *testing.T) { assert.Equal(t, want, got.Get("subject.reference").String()) })
		t.Run("extension valueReference", func(t *testing.T) { assert.Equal(t, want, got.Get("extension.0.valueReference.reference").String()) })
		t.Run("extension valueUri", func(t *testing.T) { assert.Equal(t, want, got.Get("extension.1.valueUri").String()) })
		t.Run("Attachment.url", func(t *testing.T) { assert.Equal(t, want, gotDoc.Get("content.0.attachment.url").String()) })
		t.Run("narrative a href", func(t *testing.T) {
			div := got.Get("text.div").String()
			assert.NotContains(t, div, pURN, "urn:uuid left in the narrative")
			assert.Contains(t, div, `href="`+want+`"`, "narrative link not rewritten")
		})
	})

	stale := c.create(t, patient(run.family("TxStale"), "V1"))
	staleID := stale.Get("id").String()
	staleBody := patient(run.family("TxStale"), "V2")
	staleBody["id"] = staleID
	c.put(t, staleBody)

	rollbacks := []struct {
		name   string
		before map[string]any // a valid entry written before bad; nil: a plain POST
		bad    map[string]any // the entry that must fail
		wants  []int
	}{
		{
			name: "missing required element",
			bad: entry("urn:uuid:"+newUUID(), map[string]any{
				"resourceType": "Observation",
				"code":         map[string]any{"text": "no status"},
			}, "POST", "Observation"),
			wants: []int{http.StatusBadRequest, http.StatusUnprocessableEntity},
		},
		{
			name: "stale ifMatch",
			bad: func() map[string]any {
				e := entry("", staleBody, "PUT", "Patient/"+staleID)
				e["request"].(map[string]any)["ifMatch"] = weak("1")
				return e
			}(),
			wants: []int{http.StatusConflict, http.StatusPreconditionFailed},
		},
		{
			name:  "unknown resource type",
			bad:   entry("", map[string]any{"resourceType": "NotAType"}, "POST", "NotAType"),
			wants: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusUnprocessableEntity},
		},
		{
			name: "two entries for the same resource",
			before: func() map[string]any {
				b := patient(run.family("TxStale"), "First")
				b["id"] = staleID
				return entry("", b, "PUT", "Patient/"+staleID)
			}(),
			bad: func() map[string]any {
				b := patient(run.family("TxStale"), "Twice")
				b["id"] = staleID
				return entry("", b, "PUT", "Patient/"+staleID)
			}(),
			wants: []int{http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity},
		},
		{
			name:  "PUT whose resource id differs from the url",
			bad:   entry("", map[string]any{"resourceType": "Patient", "id": run.id("body")}, "PUT", "Patient/"+run.id("url")),
			wants: []int{http.StatusBadRequest, http.StatusUnprocessableEntity},
		},
		{
			name:  "conditional reference with no match",
			bad:   entry("urn:uuid:"+newUUID(), map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "x"}, "subject": map[string]any{"reference": "Patient?identifier=" + run.system("none") + "|none"}}, "POST", "Observation"),
			wants: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusPreconditionFailed, http.StatusUnprocessableEntity},
		},
		{
			name:  "entry without request (bdl-3)",
			bad:   map[string]any{"fullUrl": "urn:uuid:" + newUUID(), "resource": patient(run.family("TxNoReq"))},
			wants: []int{http.StatusBadRequest, http.StatusUnprocessableEntity},
		},
		{
			name:  "unknown request method",
			bad:   entry("urn:uuid:"+newUUID(), patient(run.family("TxFoo")), "FOO", "Patient"),
			wants: []int{http.StatusBadRequest, http.StatusUnprocessableEntity},
		},
		{
			name:  "POST entry without a resource",
			bad:   entry("urn:uuid:"+newUUID(), nil, "POST", "Patient"),
			wants: []int{http.StatusBadRequest, http.StatusUnprocessableEntity},
		},
		{
			name:  "malformed request url",
			bad:   entry("", nil, "DELETE", ""),
			wants: []int{http.StatusBadRequest, http.StatusNotFound},
		},
	}
	t.Run("transaction with a duplicate fullUrl writes nothing", func(t *testing.T) {
		// Bundle invariant bdl-7: fullUrl is unique unless meta.versionId
		// differs; two entries claiming one urn:uuid make references
		// to it ambiguous.
		family := run.family("TxDupURL")
		u := "urn:uuid:" + newUUID()
		obs := minimalResource("Observation", "placeholder")
		obs["subject"] = map[string]any{"reference": u}
		r := c.do(t, http.MethodPost, "", bundle("transaction",
			entry(u, patient(family, "One"), "POST", "Patient"),
			entry(u, patient(family, "Two"), "POST", "Patient"),
			entry("urn:uuid:"+newUUID(), obs, "POST", "Observation"),
		))
		requireOutcome(t, r, http.StatusBadRequest, http.StatusUnprocessableEntity)
		matches, _ := c.searchAll(t, "Patient?family="+family)
		assert.Empty(t, matches, "a rejected transaction wrote resources")
	})

	for i, tc := range rollbacks {
		t.Run("transaction with an invalid entry writes nothing/"+tc.name, func(t *testing.T) {
			family := run.family(fmt.Sprintf("TxBad%d", i))
			before := tc.before
			if before == nil {
				before = entry("", patient(family, "Second"), "POST", "Patient")
			}
			tx := bundle("transaction",
				entry("urn:uuid:"+newUUID(), patient(family, "Good"), "POST", "Patient"),
				before,
				tc.bad,
			)
			r := c.do(t, http.MethodPost, "", tx)
			requireOutcome(t, r, tc.wants...)
			matches, _ := c.searchAll(t, "Patient?family="+family)
			assert.Empty(t, matches, "a failed transaction wrote resources")
			assert.Equal(t, "2", c.read(t, "Patient", staleID).Get("meta.versionId").String(), "a failed transaction changed Patient/%s", staleID)
		})
	}

	t.Run("transaction conditional create reuses the match and rewrites references to it", func(t *testing.T) {
		family := run.family("TxCond")
		sys := run.system("txcond")
		existing := c.create(t, identified(family, sys, "X")).Get("id").String()
		pURN := "urn:uuid:" + newUUID()
		pe := entry(pURN, identified(family, sys, "X"), "POST", "Patient")
		pe["request"].(map[string]any)["ifNoneExist"] = "identifier=" + sys + "|X"
		obs := minimalResource("Observation", "placeholder")
		obs["subject"] = map[string]any{"reference": pURN}
		r := c.do(t, http.MethodPost, "", bundle("transaction", pe, entry("urn:uuid:"+newUUID(), obs, "POST", "Observation")))
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		entries := r.get("entry").Array()
		require.Len(t, entries, 2, "%s", r)
		assert.Equal(t, http.StatusOK, statusCode(entries[0].Get("response.status").String()), "matched conditional create: %s", entries[0].Raw)
		assert.Equal(t, existing, idFromLocation(entries[0].Get("response.location").String(), "Patient"), "location of the match")
		obsID := idFromLocation(entries[1].Get("response.location").String(), "Observation")
		require.NotEmpty(t, obsID, "%s", entries[1].Raw)
		assert.Equal(t, "Patient/"+existing, c.read(t, "Observation", obsID).Get("subject.reference").String(), "reference to the conditional entry")
		matches, _ := c.searchAll(t, "Patient?family="+family)
		assert.Equal(t, []string{existing}, matches, "conditional create in a transaction duplicated the match")
	})

	t.Run("large transaction is all or nothing", func(t *testing.T) {
		const n = 1000
		family := run.family("TxLarge")
		entries := make([]map[string]any, 0, n)
		for i := range n - 1 {
			entries = append(entries, entry("urn:uuid:"+newUUID(), patient(family, fmt.Sprintf("N%d", i)), "POST", "Patient"))
		}
		bad := entry("urn:uuid:"+newUUID(), map[string]any{"resourceType": "Observation", "code": map[string]any{"text": "no status"}}, "POST", "Observation")
		r := c.do(t, http.MethodPost, "", bundle("transaction", append(entries, bad)...))
		requireOutcome(t, r, http.StatusBadRequest, http.StatusUnprocessableEntity)
		count := c.do(t, http.MethodGet, "Patient?family="+family+"&_summary=count", nil)
		require.Equal(t, http.StatusOK, count.Status, "%s", count)
		assert.EqualValues(t, 0, count.get("total").Int(), "resources written by a failed transaction")

		ok := append(entries, entry("urn:uuid:"+newUUID(), patient(family, "Last"), "POST", "Patient"))
		r = c.do(t, http.MethodPost, "", bundle("transaction", ok...))
		require.Equal(t, http.StatusOK, r.Status, "%.500s", r)
		assert.Len(t, r.get("entry").Array(), n)
		count = c.do(t, http.MethodGet, "Patient?family="+family+"&_summary=count", nil)
		assert.EqualValues(t, n, count.get("total").Int(), "resources written by the transaction")
	})

	t.Run("transaction resolves conditional references", func(t *testing.T) {
		sys := run.system("condref")
		pid := c.create(t, identified(run.family("TxCondRef"), sys, "CR")).Get("id").String()
		obs := minimalResource("Observation", "placeholder")
		obs["subject"] = map[string]any{"reference": "Patient?identifier=" + sys + "|CR"}
		r := c.do(t, http.MethodPost, "", bundle("transaction", entry("urn:uuid:"+newUUID(), obs, "POST", "Observation")))
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		oid := idFromLocation(r.get("entry.0.response.location").String(), "Observation")
		assert.Equal(t, "Patient/"+pid, c.read(t, "Observation", oid).Get("subject.reference").String())
	})

	t.Run("transaction GET entries see the transaction's writes", func(t *testing.T) {
		// http.html: GET entries are processed after DELETE, POST and PUT.
		family := run.family("TxOrder")
		r := c.do(t, http.MethodPost, "", bundle("transaction",
			entry("", nil, "GET", "Patient?family="+family),
			entry("urn:uuid:"+newUUID(), patient(family), "POST", "Patient"),
		))
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Equal(t, http.StatusOK, statusCode(r.get("entry.0.response.status").String()), "%s", r)
		assert.Len(t, r.get("entry.0.resource.entry").Array(), 1, "the GET ran before the POST: %s", r)
	})

	t.Run("concurrent readers never see part of a transaction", func(t *testing.T) {
		const n = 500
		family := run.family("TxVisible")
		entries := make([]map[string]any, n)
		for i := range entries {
			entries[i] = entry("urn:uuid:"+newUUID(), patient(family, fmt.Sprint(i)), "POST", "Patient")
		}
		done := make(chan *response, 1)
		go func() {
			r, err := c.try(t.Context(), http.MethodPost, "", bundle("transaction", entries...))
			if err != nil {
				r = &response{Status: -1, Body: []byte(err.Error())}
			}
			done <- r
		}()
		var seen []int64
		var final *response
		for final == nil {
			for _, q := range []string{"&_summary=count", "&_count=1000"} {
				r := c.do(t, http.MethodGet, "Patient?family="+family+q, nil)
				require.Equal(t, http.StatusOK, r.Status, "%s", r)
				got := r.get("total").Int()
				if q == "&_count=1000" {
					got = int64(len(r.get("entry").Array()))
				}
				seen = append(seen, got)
			}
			select {
			case final = <-done:
			default:
			}
		}
		require.Equal(t, http.StatusOK, final.Status, "%.300s", final)
		for _, v := range seen {
			if v != 0 && v != n {
				assert.Failf(t, "partial transaction visible", "a reader saw %d of %d resources (all observations: %v)", v, n, seen)
				break
			}
		}
		t.Logf("%d reads during the transaction", len(seen))
	})

	t.Run("transaction delete entry removes the resource", func(t *testing.T) {
		family := run.family("TxDel")
		victim := c.create(t, patient(family, "Victim")).Get("id").String()
		r := c.do(t, http.MethodPost, "", bundle("transaction",
			entry("", nil, "DELETE", "Patient/"+victim),
			entry("urn:uuid:"+newUUID(), patient(family, "New"), "POST", "Patient"),
		))
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		requireOutcome(t, c.do(t, http.MethodGet, "Patient/"+victim, nil), http.StatusGone)
		matches, _ := c.searchAll(t, "Patient?family="+family)
		assert.Len(t, matches, 1)
	})

	t.Run("batch answers each entry on its own", func(t *testing.T) {
		family := run.family("Batch")
		b := bundle("batch",
			entry("urn:uuid:"+newUUID(), patient(family, "Good"), "POST", "Patient"),
			entry("urn:uuid:"+newUUID(), map[string]any{"resourceType": "Observation", "code": map[string]any{"text": "no status"}}, "POST", "Observation"),
			entry("", nil, "GET", "Patient/"+run.id("absent")),
			entry("", nil, "GET", "Patient/"+staleID),
		)
		r := c.do(t, http.MethodPost, "", b)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		require.Equal(t, "batch-response", r.get("type").String(), "%s", r)
		entries := r.get("entry").Array()
		require.Len(t, entries, 4, "%s", r)

		assert.Equal(t, http.StatusCreated, statusCode(entries[0].Get("response.status").String()), "good create: %s", entries[0].Raw)
		bad := statusCode(entries[1].Get("response.status").String())
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusUnprocessableEntity}, bad, "invalid create: %s", entries[1].Raw)
		assert.Equal(t, "OperationOutcome", entries[1].Get("response.outcome.resourceType").String(), "failed entry carries an OperationOutcome: %s", entries[1].Raw)
		assert.Equal(t, http.StatusNotFound, statusCode(entries[2].Get("response.status").String()), "read of an absent id: %s", entries[2].Raw)
		assert.Equal(t, http.StatusOK, statusCode(entries[3].Get("response.status").String()), "read: %s", entries[3].Raw)
		assert.Equal(t, staleID, entries[3].Get("resource.id").String(), "read entry returns the resource: %s", entries[3].Raw)

		matches, _ := c.searchAll(t, "Patient?family="+family)
		assert.Len(t, matches, 1, "the good entry of the batch was written")
	})

	t.Run("bundle of another type is rejected", func(t *testing.T) {
		r := c.do(t, http.MethodPost, "", bundle("collection", entry("", patient(run.family("Coll")), "POST", "Patient")))
		requireOutcome(t, r, http.StatusBadRequest, http.StatusUnprocessableEntity)
	})
}
