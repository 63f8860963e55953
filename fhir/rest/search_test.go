package rest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

func TestSearch(t *testing.T) {
	e := newEnv(t)
	org := e.create(map[string]any{"resourceType": "Organization", "name": "Acme"})
	orgID := org.Get("id").String()
	var created []string
	for i := range 23 {
		p := patient("Paging", fmt.Sprintf("G%02d", i))
		p["managingOrganization"] = map[string]any{"reference": "Organization/" + orgID}
		created = append(created, e.create(p).Get("id").String())
	}
	for _, pid := range created[:3] {
		e.create(observation("Patient/" + pid))
	}

	t.Run("paging neither skips nor repeats", func(t *testing.T) {
		ids, pages := e.searchAll("Patient?family=Paging&_count=5")
		assert.Equal(t, 5, pages)
		got := append([]string(nil), ids...)
		sort.Strings(got)
		want := append([]string(nil), created...)
		sort.Strings(want)
		assert.Equal(t, want, got)
	})
	t.Run("paging while writing", func(t *testing.T) {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				e.create(patient("Other", fmt.Sprintf("W%d", i)))
			}
		}()
		ids, _ := e.searchAll("Patient?family=Paging&_count=3")
		wg.Wait()
		seen := map[string]bool{}
		for _, id := range ids {
			assert.False(t, seen[id], "repeated %s", id)
			seen[id] = true
		}
		assert.Len(t, seen, len(created))
	})
	t.Run("total, self and next links", func(t *testing.T) {
		r := e.do(http.MethodGet, "Patient?family=Paging&_count=10", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Equal(t, "searchset", r.get("type").String())
		assert.EqualValues(t, 23, r.get("total").Int())
		assert.Len(t, r.get("entry").Array(), 10)
		assert.Equal(t, "self", r.get("link.0.relation").String())
		assert.Contains(t, r.get("link.0.url").String(), "family=Paging")
		assert.Equal(t, "next", r.get("link.1.relation").String())
		assert.Contains(t, r.get("link.1.url").String(), "_cursor=")
		assert.Equal(t, e.base+"/Patient/"+r.get("entry.0.resource.id").String(), r.get("entry.0.fullUrl").String())
	})
	t.Run("_summary=count and _count=0", func(t *testing.T) {
		for _, q := range []string{"_summary=count", "_count=0"} {
			r := e.do(http.MethodGet, "Patient?family=Paging&"+q, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r)
			assert.EqualValues(t, 23, r.get("total").Int(), q)
			assert.False(t, r.get("entry").Exists(), q)
			assert.Len(t, r.get("link").Array(), 1, "%s: only a self link", q)
		}
		r := e.do(http.MethodGet, "Patient/_history?_count=0", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.False(t, r.get("entry").Exists())
		assert.Len(t, r.get("link").Array(), 1)
	})
	t.Run("_sort", func(t *testing.T) {
		r := e.do(http.MethodGet, "Patient?family=Paging&_sort=-given&_count=3", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		var given []string
		for _, en := range r.get("entry").Array() {
			given = append(given, en.Get("resource.name.0.given.0").String())
		}
		assert.Equal(t, []string{"G22", "G21", "G20"}, given)
	})
	t.Run("_id and _lastUpdated", func(t *testing.T) {
		ids, _ := e.searchAll("Patient?_id=" + created[0] + "," + created[1])
		assert.ElementsMatch(t, created[:2], ids)
		ids, _ = e.searchAll("Patient?family=Paging&_lastUpdated=gt" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
		assert.Empty(t, ids)
	})
	t.Run("_include and _revinclude", func(t *testing.T) {
		r := e.do(http.MethodGet, "Patient?_id="+created[0]+"&_include=Patient:organization&_revinclude=Observation:subject", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		modes := map[string]string{}
		for _, en := range r.get("entry").Array() {
			modes[en.Get("resource.resourceType").String()] = en.Get("search.mode").String()
		}
		assert.Equal(t, map[string]string{"Patient": "match", "Organization": "include", "Observation": "include"}, modes)
		r = e.do(http.MethodGet, "Patient?_include=Patient:nonsense", nil)
		assert.Equal(t, http.StatusBadRequest, r.Status)
	})
	t.Run("_include:iterate", func(t *testing.T) {
		// Observation -> Patient -> Organization needs one iteration.
		r := e.do(http.MethodGet, "Observation?subject=Patient/"+created[0]+"&_include=Observation:subject&_include:iterate=Patient:organization", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		var types []string
		for _, en := range r.get("entry").Array() {
			types = append(types, en.Get("resource.resourceType").String()+"/"+en.Get("search.mode").String())
		}
		assert.Equal(t, []string{"Observation/match", "Patient/include", "Organization/include"}, types)
		r = e.do(http.MethodGet, "Observation?subject=Patient/"+created[0]+"&_include=Observation:subject&_include=Patient:organization", nil)
		assert.Equal(t, http.StatusBadRequest, r.Status, "a non-iterate include must start at the searched type")
	})
	t.Run("_elements", func(t *testing.T) {
		r := e.do(http.MethodGet, "Patient?_id="+created[0]+"&_elements=gender", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		res := r.get("entry.0.resource")
		assert.Equal(t, "female", res.Get("gender").String())
		assert.False(t, res.Get("name").Exists())
		assert.Equal(t, "SUBSETTED", res.Get("meta.tag.0.code").String())
	})
	t.Run("_summary=true", func(t *testing.T) {
		g := e.create(map[string]any{"resourceType": "Group", "type": "person", "actual": true,
			"identifier": []any{map[string]any{"system": "urn:test:g", "value": "G1"}},
			"member":     []any{map[string]any{"entity": map[string]any{"reference": "Patient/" + created[0]}}}})
		r := e.do(http.MethodGet, "Group?identifier=urn:test:g|G1&_summary=true", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		res := r.get("entry.0.resource")
		assert.Equal(t, g.Get("id").String(), res.Get("id").String())
		assert.True(t, res.Get("identifier").Exists())
		assert.False(t, res.Get("member").Exists())
		assert.Equal(t, "SUBSETTED", res.Get("meta.tag.0.code").String())
		r = e.do(http.MethodGet, "Questionnaire?_summary=true", nil)
		assert.Equal(t, http.StatusBadRequest, r.Status, "no summary table for this type")
	})
	t.Run("_summary=data", func(t *testing.T) {
		p := patient("Narrative")
		p["text"] = map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">Ann</div>`}
		id := e.create(p).Get("id").String()
		r := e.do(http.MethodGet, "Patient?_id="+id+"&_summary=data", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		res := r.get("entry.0.resource")
		assert.False(t, res.Get("text").Exists())
		assert.Equal(t, "Narrative", res.Get("name.0.family").String())
		assert.Equal(t, "SUBSETTED", res.Get("meta.tag.0.code").String())
	})
	t.Run("POST _search", func(t *testing.T) {
		r := e.do(http.MethodPost, "Patient/_search", "family=Paging&_count=2", "Content-Type", "application/x-www-form-urlencoded")
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.EqualValues(t, 23, r.get("total").Int())
		assert.Len(t, r.get("entry").Array(), 2)
	})
	t.Run("unknown parameter", func(t *testing.T) {
		r := e.do(http.MethodGet, "Patient?family=Paging&bogus=1", nil)
		assert.Equal(t, http.StatusBadRequest, r.Status)
		isOutcome(t, r)
		assert.Equal(t, "bogus", r.get("issue.0.expression.0").String())
		r = e.do(http.MethodGet, "Patient?family=Paging&bogus=1&_count=1", nil, "Prefer", "handling=lenient")
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Equal(t, "outcome", r.get("entry.0.search.mode").String())
		assert.Equal(t, "OperationOutcome", r.get("entry.0.resource.resourceType").String())
		assert.EqualValues(t, 23, r.get("total").Int())
	})
	assert.Zero(t, e.srv.Panics())
}

func TestHistory(t *testing.T) {
	e := newEnv(t)
	org := map[string]any{"resourceType": "Organization", "name": "Hist"}
	first := e.create(org)
	id := first.Get("id").String()
	since := first.Get("meta.lastUpdated").String()
	org["id"] = id
	for _, n := range []string{"B", "C"} {
		org["name"] = "Hist" + n
		r := e.do(http.MethodPut, "Organization/"+id, org)
		require.Equal(t, http.StatusOK, r.Status)
	}
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, "Organization/"+id, nil).Status)
	other := e.create(map[string]any{"resourceType": "Organization", "name": "Other"}).Get("id").String()

	t.Run("instance", func(t *testing.T) {
		r := e.do(http.MethodGet, "Organization/"+id+"/_history", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Equal(t, "history", r.get("type").String())
		assert.EqualValues(t, 4, r.get("total").Int())
		var methods []string
		for _, en := range r.get("entry").Array() {
			methods = append(methods, en.Get("request.method").String())
		}
		assert.Equal(t, []string{"DELETE", "PUT", "PUT", "POST"}, methods)
		assert.Equal(t, "HistC", r.get("entry.1.resource.name").String())
		assert.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "Organization/none/_history", nil).Status)
	})
	collect := func(path string) []string {
		var keys []string
		next := path
		for n := 0; next != ""; n++ {
			require.Less(t, n, 50)
			r := e.do(http.MethodGet, next, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r)
			for _, en := range r.get("entry").Array() {
				keys = append(keys, strings.TrimPrefix(en.Get("fullUrl").String(), e.base+"/")+" "+en.Get("response.etag").String())
			}
			next = ""
			r.get("link").ForEach(func(_, l gjson.Result) bool {
				if l.Get("relation").String() == "next" {
					next = l.Get("url").String()
				}
				return true
			})
			// Writes between pages must not shift the pages.
			e.create(map[string]any{"resourceType": "Organization", "name": "Between"})
		}
		return keys
	}
	t.Run("type history pages with _since", func(t *testing.T) {
		keys := collect("Organization/_history?_count=2&_since=" + url.QueryEscape(since))
		assert.Equal(t, []string{
			"Organization/" + other + ` W/"1"`,
			"Organization/" + id + ` W/"4"`,
			"Organization/" + id + ` W/"3"`,
			"Organization/" + id + ` W/"2"`,
			"Organization/" + id + ` W/"1"`,
		}, keys)
	})
	t.Run("instance history pages one version at a time", func(t *testing.T) {
		keys := collect("Organization/" + id + "/_history?_count=1")
		assert.Equal(t, []string{
			"Organization/" + id + ` W/"4"`, "Organization/" + id + ` W/"3"`,
			"Organization/" + id + ` W/"2"`, "Organization/" + id + ` W/"1"`,
		}, keys)
	})
	t.Run("system history", func(t *testing.T) {
		r := e.do(http.MethodGet, "_history?_count=1", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Len(t, r.get("entry").Array(), 1)
		r = e.do(http.MethodGet, "_history?_since=yesterday", nil)
		assert.Equal(t, http.StatusBadRequest, r.Status)
	})
}
