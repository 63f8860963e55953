package conformance

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// historyEntry is one entry of a history Bundle, reduced to what the checks
// compare.
type historyEntry struct {
	Key         string // Type/id/_history/version, or Type/id (DELETE) for tombstones without a resource
	Method      string
	LastUpdated time.Time
}

// historyAll reads a history Bundle and follows next links.
func historyAll(t testing.TB, c *client, path string) (entries []historyEntry, total int64, hasTotal bool) {
	t.Helper()
	next := path
	seenTotal := false
	for page := 0; next != ""; page++ {
		require.Less(t, page, 100, "history %s: more than 100 pages", path)
		r := c.do(t, http.MethodGet, next, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		require.Equal(t, "Bundle", r.get("resourceType").String(), "%s", r)
		require.Equal(t, "history", r.get("type").String(), "%s", r)
		if tot := r.get("total"); tot.Exists() && !seenTotal {
			total, hasTotal, seenTotal = tot.Int(), true, true
		}
		for _, e := range r.get("entry").Array() {
			he := historyEntry{Method: e.Get("request.method").String()}
			res := e.Get("resource")
			if res.Exists() {
				he.Key = res.Get("resourceType").String() + "/" + res.Get("id").String() + "/_history/" + res.Get("meta.versionId").String()
				he.LastUpdated = parseInstant(t, res.Get("meta.lastUpdated").String())
			} else {
				he.Key = strings.TrimPrefix(e.Get("request.url").String(), c.base+"/")
			}
			entries = append(entries, he)
		}
		next = linkURL(r, "next")
		if next != "" {
			next = c.resolve(r.URL, next)
		}
	}
	return entries, total, hasTotal
}

func checkHistory(t *testing.T, c *client, run runID) {
	t.Run("instance history lists every version newest first", func(t *testing.T) {
		org := map[string]any{"resourceType": "Organization", "name": run.family("HistInst")}
		id := c.create(t, org).Get("id").String()
		org["id"] = id
		for _, alias := range []string{"second", "third"} {
			org["alias"] = []any{alias}
			c.put(t, org)
		}
		dr := c.do(t, http.MethodDelete, "Organization/"+id, nil)
		require.Contains(t, []int{http.StatusOK, http.StatusNoContent}, dr.Status, "%s", dr)

		entries, total, hasTotal := historyAll(t, c, "Organization/"+id+"/_history")
		require.Len(t, entries, 4, "create, 2 updates, delete: %+v", entries)
		if hasTotal {
			assert.EqualValues(t, 4, total, "Bundle.total")
		}
		assert.Equal(t, "DELETE", entries[0].Method, "newest entry is the delete: %+v", entries)
		assert.Contains(t, entries[0].Key, "Organization/"+id, "delete entry request.url")
		want := []string{"/_history/3", "/_history/2", "/_history/1"}
		for i, w := range want {
			assert.Equal(t, "Organization/"+id+w, entries[i+1].Key, "entry %d", i+1)
		}
		assert.Contains(t, []string{"POST", "PUT"}, entries[3].Method, "create entry request.method")
		assert.Equal(t, "PUT", entries[1].Method, "update entry request.method")
	})

	t.Run("type history with _since has exactly the new versions newest first across pages", func(t *testing.T) {
		name := run.family("HistType")
		first := c.create(t, map[string]any{"resourceType": "Organization", "name": name + "1"})
		since := first.Get("meta.lastUpdated").String()
		want := []string{"Organization/" + first.Get("id").String() + "/_history/1"}
		var last gjson.Result
		for _, n := range []string{"2", "3"} {
			last = c.create(t, map[string]any{"resourceType": "Organization", "name": name + n})
			want = append(want, "Organization/"+last.Get("id").String()+"/_history/1")
		}
		upd := map[string]any{"resourceType": "Organization", "id": last.Get("id").String(), "name": name + "3b"}
		c.put(t, upd)
		want = append(want, "Organization/"+last.Get("id").String()+"/_history/2")

		entries, _, _ := historyAll(t, c, "Organization/_history?_since="+url.QueryEscape(since)+"&_count=2")
		sinceT := parseInstant(t, since)
		got := []string{}
		seen := map[string]bool{}
		for i, e := range entries {
			assert.False(t, seen[e.Key], "entry %s repeated across pages", e.Key)
			seen[e.Key] = true
			if !e.LastUpdated.IsZero() {
				assert.False(t, e.LastUpdated.Before(sinceT), "entry %s older than _since", e.Key)
				if i > 0 && !entries[i-1].LastUpdated.IsZero() {
					assert.False(t, e.LastUpdated.After(entries[i-1].LastUpdated), "not newest first at entry %d: %+v", i, entries)
				}
			}
			for _, w := range want {
				if w == e.Key {
					got = append(got, e.Key)
				}
			}
		}
		// Reverse of creation order, since they were written one after another.
		assert.Equal(t, []string{want[3], want[2], want[1], want[0]}, got, "our versions in the type history")
	})

	t.Run("system history with _since lists versions of every type newest first", func(t *testing.T) {
		first := c.create(t, map[string]any{"resourceType": "Organization", "name": run.family("HistSys")})
		since := first.Get("meta.lastUpdated").String()
		second := c.create(t, patient(run.family("HistSys")))
		want := []string{
			"Patient/" + second.Get("id").String() + "/_history/1",
			"Organization/" + first.Get("id").String() + "/_history/1",
		}
		entries, _, _ := historyAll(t, c, "_history?_since="+url.QueryEscape(since)+"&_count=50")
		var got []string
		for _, e := range entries {
			if slices.Contains(want, e.Key) {
				got = append(got, e.Key)
			}
		}
		assert.Equal(t, want, got, "our versions in the system history, newest first")
	})

	t.Run("instance history pages with _count", func(t *testing.T) {
		org := map[string]any{"resourceType": "Organization", "name": run.family("HistPage")}
		id := c.create(t, org).Get("id").String()
		org["id"] = id
		for i := range 4 {
			org["alias"] = []any{fmt.Sprint(i)}
			c.put(t, org)
		}
		entries, _, _ := historyAll(t, c, "Organization/"+id+"/_history?_count=2")
		var keys []string
		for _, e := range entries {
			keys = append(keys, e.Key)
		}
		want := []string{}
		for v := 5; v >= 1; v-- {
			want = append(want, fmt.Sprintf("Organization/%s/_history/%d", id, v))
		}
		assert.Equal(t, want, keys, "five versions over three pages, newest first")
	})

	t.Run("history of an unknown resource is 404", func(t *testing.T) {
		requireOutcome(t, c.do(t, http.MethodGet, "Organization/"+run.id("absent")+"/_history", nil), http.StatusNotFound)
	})

	t.Run("vread with a non-numeric version is 404", func(t *testing.T) {
		id := c.create(t, map[string]any{"resourceType": "Organization", "name": run.family("HistBad")}).Get("id").String()
		requireOutcome(t, c.do(t, http.MethodGet, "Organization/"+id+"/_history/abc", nil), http.StatusNotFound, http.StatusBadRequest)
	})

	t.Run("history parameters are applied or refused", func(t *testing.T) {
		id := c.create(t, map[string]any{"resourceType": "Organization", "name": run.family("HistParams")}).Get("id").String()
		empty := c.do(t, http.MethodGet, "Organization/"+id+"/_history?_since=2999-01-01T00:00:00Z", nil)
		require.Equal(t, http.StatusOK, empty.Status, "%s", empty)
		assert.Empty(t, empty.get("entry").Array(), "_since in the future: %s", empty)
		for _, q := range []string{"_since=garbage", "_count=abc", "_zz-unknown=1"} {
			requireOutcome(t, c.do(t, http.MethodGet, "Organization/"+id+"/_history?"+q, nil), http.StatusBadRequest)
		}
		// _at is optional; if it is not implemented it must be refused,
		// not ignored.
		at := c.do(t, http.MethodGet, "Organization/"+id+"/_history?_at=2000", nil)
		if at.Status == http.StatusOK {
			assert.Empty(t, at.get("entry").Array(), "_at=2000 predates the resource: %s", at)
		} else {
			requireOutcome(t, at, http.StatusBadRequest)
		}
	})
}
