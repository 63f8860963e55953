package conformance

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// checkFidelity checks that what is stored is what was sent: decimals keep
// their precision, text its characters, and meta is the server's.
func checkFidelity(t *testing.T, c *client, run runID) {
	family := run.family("Fid")

	t.Run("decimal precision is kept", func(t *testing.T) {
		// 1.50 and 0.000100 are distinct from 1.5 and 0.0001 in FHIR.
		raw := `{"resourceType":"Observation","status":"final","code":{"text":"` + family + `"},` +
			`"valueQuantity":{"value":1.50,"unit":"kg"},"referenceRange":[{"low":{"value":0.000100}}]}`
		r := c.do(t, http.MethodPost, "Observation", []byte(raw))
		require.Equal(t, http.StatusCreated, r.Status, "%s", r)
		got := c.read(t, "Observation", c.bodyOrLocation(t, r).Get("id").String())
		assert.Equal(t, "1.50", got.Get("valueQuantity.value").Raw)
		assert.Equal(t, "0.000100", got.Get("referenceRange.0.low.value").Raw)
	})

	t.Run("unicode text is kept", func(t *testing.T) {
		given := []any{"Zoë", "Łukasz", "李", "Ἀθηνᾶ", "🩺"}
		b := patient(family, "x")
		b["name"] = []any{map[string]any{"family": family, "given": given}}
		got := c.read(t, "Patient", c.create(t, b).Get("id").String())
		for i, g := range given {
			assert.Equal(t, g, got.Get(fmt.Sprintf("name.0.given.%d", i)).String())
		}
	})

	t.Run("a large resource under the limit round-trips", func(t *testing.T) {
		div := `<div xmlns="http://www.w3.org/1999/xhtml">` + strings.Repeat("lorem ipsum ", 80_000) + `</div>`
		b := patient(family, "Large")
		b["text"] = map[string]any{"status": "generated", "div": div}
		got := c.read(t, "Patient", c.create(t, b).Get("id").String())
		assert.Equal(t, div, got.Get("text.div").String(), "text.div of %d bytes changed", len(div))
	})

	t.Run("client meta.versionId and lastUpdated are replaced", func(t *testing.T) {
		b := patient(family, "Meta")
		b["meta"] = map[string]any{"versionId": "42", "lastUpdated": "2001-01-01T00:00:00Z", "tag": []any{map[string]any{"system": "http://example.org/tags", "code": "kept"}}}
		created := c.create(t, b)
		assert.Equal(t, "1", created.Get("meta.versionId").String())
		assert.NotEqual(t, "2001-01-01T00:00:00Z", created.Get("meta.lastUpdated").String())
		assert.Equal(t, "kept", created.Get("meta.tag.0.code").String(), "meta.tag dropped")
		// A stale versionId in the body of an unconditional update is not a
		// precondition: only If-Match is.
		b["id"] = created.Get("id").String()
		b["meta"] = map[string]any{"versionId": "1"}
		c.put(t, b)
		c.put(t, b)
		assert.Equal(t, "3", c.read(t, "Patient", b["id"].(string)).Get("meta.versionId").String())
	})
}

// checkConcurrency checks version bookkeeping under concurrent writers.
func checkConcurrency(t *testing.T, c *client, run runID) {
	family := run.family("Conc")
	const n = 10

	t.Run("concurrent unconditional updates make distinct consecutive versions", func(t *testing.T) {
		id := c.create(t, patient(family, "Base")).Get("id").String()
		versions := parallel(t, n, func(i int) (*response, error) {
			b := patient(family, fmt.Sprintf("U%d", i))
			b["id"] = id
			return c.try(t.Context(), http.MethodPut, "Patient/"+id, b)
		})
		seen := map[string]bool{}
		for _, r := range versions {
			require.Equal(t, http.StatusOK, r.Status, "%s", r)
			v := etagVersion(r.Header.Get("ETag"))
			assert.False(t, seen[v], "version %s handed out twice", v)
			seen[v] = true
		}
		for v := 2; v <= n+1; v++ {
			assert.True(t, seen[fmt.Sprint(v)], "version %d missing from %v", v, seen)
		}
		assert.EqualValues(t, n+1, c.read(t, "Patient", id).Get("meta.versionId").Int())
		entries, _, _ := historyAll(t, c, "Patient/"+id+"/_history")
		assert.Len(t, entries, n+1, "history entries")
	})

	t.Run("concurrent create-on-update of one id creates it once", func(t *testing.T) {
		id := run.id("conc-put")
		res := parallel(t, n, func(int) (*response, error) {
			b := patient(family, "Put")
			b["id"] = id
			return c.try(t.Context(), http.MethodPut, "Patient/"+id, b)
		})
		created := 0
		for _, r := range res {
			require.Contains(t, []int{http.StatusOK, http.StatusCreated}, r.Status, "%s", r)
			if r.Status == http.StatusCreated {
				created++
			}
		}
		assert.Equal(t, 1, created, "201 answers among %v", statusesOf(res))
		versions := map[string]int{}
		for _, r := range res {
			versions[etagVersion(r.Header.Get("ETag"))]++
		}
		for v, k := range versions {
			assert.Equal(t, 1, k, "version %s handed out %d times (ETags %v)", v, k, versions)
		}
		assert.EqualValues(t, n, c.read(t, "Patient", id).Get("meta.versionId").Int())
	})

	t.Run("mixed concurrent updates and deletes leave a consistent history", func(t *testing.T) {
		id := c.create(t, patient(family, "Mixed")).Get("id").String()
		res := parallel(t, 12, func(i int) (*response, error) {
			if i%3 == 2 {
				return c.try(t.Context(), http.MethodDelete, "Patient/"+id, nil)
			}
			b := patient(family, fmt.Sprintf("M%d", i))
			b["id"] = id
			return c.try(t.Context(), http.MethodPut, "Patient/"+id, b)
		})
		var acked []string
		for _, r := range res {
			require.Less(t, r.Status, 300, "%s", r)
			if r.Method == http.MethodPut {
				acked = append(acked, etagVersion(r.Header.Get("ETag")))
			}
		}
		entries, _, _ := historyAll(t, c, "Patient/"+id+"/_history")
		require.NotEmpty(t, entries)
		versions := map[string]bool{}
		for _, e := range entries {
			if i := strings.LastIndex(e.Key, "/_history/"); i >= 0 {
				versions[e.Key[i+len("/_history/"):]] = true
			}
		}
		for _, v := range acked {
			assert.True(t, versions[v], "acknowledged version %s missing from history %+v", v, entries)
		}
		r := c.do(t, http.MethodGet, "Patient/"+id, nil)
		if entries[0].Method == "DELETE" {
			assert.Equal(t, http.StatusGone, r.Status, "newest history entry is a delete: %s", r)
		} else {
			require.Equal(t, http.StatusOK, r.Status, "newest history entry is a write: %s", r)
			assert.Equal(t, entries[0].Key, "Patient/"+id+"/_history/"+r.get("meta.versionId").String(), "read disagrees with the newest history entry")
		}
	})

	t.Run("concurrent updates leave no stale index entries", func(t *testing.T) {
		const writers = 16
		name := func(i int) string { return family + "Idx" + string(rune('A'+i)) }
		id := c.create(t, patient(name(0))).Get("id").String()
		parallel(t, writers, func(i int) (*response, error) {
			b := patient(name(i))
			b["id"] = id
			return c.try(t.Context(), http.MethodPut, "Patient/"+id, b)
		})
		current := c.read(t, "Patient", id).Get("name.0.family").String()
		for i := range writers {
			got, _ := c.searchAll(t, "Patient?family:exact="+name(i))
			if name(i) == current {
				assert.Equal(t, []string{id}, got, "current family %s not found", current)
			} else {
				assert.Empty(t, got, "stale index entry: family %s matches, current is %s", name(i), current)
			}
		}
	})

	t.Run("concurrent creates all get distinct ids and are all found", func(t *testing.T) {
		res := parallel(t, 4*n, func(i int) (*response, error) {
			return c.try(t.Context(), http.MethodPost, "Patient", patient(family+"Many", fmt.Sprint(i)))
		})
		var ids []string
		for _, r := range res {
			require.Equal(t, http.StatusCreated, r.Status, "%s", r)
			ids = append(ids, gjson.GetBytes(r.Body, "id").String())
		}
		got, _ := c.searchAll(t, "Patient?family="+family+"Many")
		sameSet(t, ids, got, "search after concurrent creates")
	})
}

// parallel runs fn n times at once and returns the responses in call order;
// a transport error fails the test.
func parallel(t *testing.T, n int, fn func(i int) (*response, error)) []*response {
	t.Helper()
	out := make([]*response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	return out
}

// statusesOf lists the status codes of responses.
func statusesOf(rs []*response) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.Status
	}
	return out
}
