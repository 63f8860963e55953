package conformance

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// identified builds a Patient carrying one identifier.
func identified(family, system, value string) map[string]any {
	p := patient(family)
	p["identifier"] = []any{map[string]any{"system": system, "value": value}}
	return p
}

func checkConditional(t *testing.T, c *client, run runID) {
	family := run.family("Cond")
	sys := run.system("cond")
	query := func(value string) string { return "identifier=" + url.QueryEscape(sys+"|"+value) }

	t.Run("conditional create twice makes one resource", func(t *testing.T) {
		body := identified(family, sys, "once")
		r1 := c.do(t, http.MethodPost, "Patient", body, header{"If-None-Exist", query("once")})
		require.Equal(t, http.StatusCreated, r1.Status, "first: %s", r1)
		id := c.bodyOrLocation(t, r1).Get("id").String()
		r2 := c.do(t, http.MethodPost, "Patient", body, header{"If-None-Exist", query("once")})
		require.Equal(t, http.StatusOK, r2.Status, "second: %s", r2)
		if len(r2.Body) > 0 {
			assert.Equal(t, id, r2.get("id").String(), "second answer names another resource")
		}
		matches, _ := c.searchAll(t, "Patient?"+query("once"))
		assert.Equal(t, []string{id}, matches)
		assert.Equal(t, "1", c.read(t, "Patient", id).Get("meta.versionId").String(), "the match was modified")
	})

	t.Run("conditional create with several matches is 412", func(t *testing.T) {
		c.create(t, identified(family, sys, "dup"))
		c.create(t, identified(family, sys, "dup"))
		r := c.do(t, http.MethodPost, "Patient", identified(family, sys, "dup"), header{"If-None-Exist", query("dup")})
		requireOutcome(t, r, http.StatusPreconditionFailed)
		matches, _ := c.searchAll(t, "Patient?"+query("dup"))
		assert.Len(t, matches, 2)
	})

	t.Run("concurrent conditional creates make one resource", func(t *testing.T) {
		const n = 8
		res := parallel(t, n, func(int) (*response, error) {
			return c.try(t.Context(), http.MethodPost, "Patient", identified(family, sys, "race"), header{"If-None-Exist", query("race")})
		})
		statuses := statusesOf(res)
		created := 0
		for _, s := range statuses {
			assert.Contains(t, []int{http.StatusOK, http.StatusCreated}, s, "statuses %v", statuses)
			if s == http.StatusCreated {
				created++
			}
		}
		assert.Equal(t, 1, created, "statuses %v", statuses)
		matches, _ := c.searchAll(t, "Patient?"+query("race"))
		assert.Len(t, matches, 1, "resources matching the condition")
	})

	t.Run("concurrent conditional updates with no match create one resource", func(t *testing.T) {
		res := parallel(t, 8, func(int) (*response, error) {
			return c.try(t.Context(), http.MethodPut, "Patient?"+query("curace"), identified(family, sys, "curace"))
		})
		created := 0
		for _, r := range res {
			assert.Contains(t, []int{http.StatusOK, http.StatusCreated}, r.Status, "%s", r)
			if r.Status == http.StatusCreated {
				created++
			}
		}
		assert.Equal(t, 1, created, "201 answers among %v", statusesOf(res))
		matches, _ := c.searchAll(t, "Patient?"+query("curace"))
		assert.Len(t, matches, 1, "resources matching the condition")
	})

	t.Run("concurrent transactions with the same conditional create make one resource", func(t *testing.T) {
		res := parallel(t, 8, func(int) (*response, error) {
			e := entry("urn:uuid:"+newUUID(), identified(family, sys, "txrace"), "POST", "Patient")
			e["request"].(map[string]any)["ifNoneExist"] = query("txrace")
			return c.try(t.Context(), http.MethodPost, "", bundle("transaction", e))
		})
		for _, r := range res {
			assert.Equal(t, http.StatusOK, r.Status, "%s", r)
		}
		matches, _ := c.searchAll(t, "Patient?"+query("txrace"))
		assert.Len(t, matches, 1, "resources matching the condition")
	})

	t.Run("conditional update creates then updates the match", func(t *testing.T) {
		body := identified(family, sys, "cu")
		r1 := c.do(t, http.MethodPut, "Patient?"+query("cu"), body)
		require.Equal(t, http.StatusCreated, r1.Status, "no match creates: %s", r1)
		id := c.bodyOrLocation(t, r1).Get("id").String()
		body["name"] = []any{map[string]any{"family": family, "given": []any{"Updated"}}}
		r2 := c.do(t, http.MethodPut, "Patient?"+query("cu"), body)
		require.Equal(t, http.StatusOK, r2.Status, "one match updates: %s", r2)
		got := c.read(t, "Patient", id)
		assert.Equal(t, "2", got.Get("meta.versionId").String())
		assert.Equal(t, "Updated", got.Get("name.0.given.0").String())
		matches, _ := c.searchAll(t, "Patient?"+query("cu"))
		assert.Equal(t, []string{id}, matches)
	})

	t.Run("conditional update whose body id differs from the match is 400", func(t *testing.T) {
		id := c.create(t, identified(family, sys, "cuid")).Get("id").String()
		body := identified(family, sys, "cuid")
		body["id"] = run.id("not-the-match")
		r := c.do(t, http.MethodPut, "Patient?"+query("cuid"), body)
		requireOutcome(t, r, http.StatusBadRequest, http.StatusPreconditionFailed, http.StatusConflict)
		assert.Equal(t, "1", c.read(t, "Patient", id).Get("meta.versionId").String(), "the match was changed")
	})

	t.Run("conditional update with several matches is 412", func(t *testing.T) {
		c.create(t, identified(family, sys, "cudup"))
		c.create(t, identified(family, sys, "cudup"))
		r := c.do(t, http.MethodPut, "Patient?"+query("cudup"), identified(family, sys, "cudup"))
		requireOutcome(t, r, http.StatusPreconditionFailed)
		matches, _ := c.searchAll(t, "Patient?"+query("cudup"))
		for _, id := range matches {
			assert.Equal(t, "1", gjson.Get(c.read(t, "Patient", id).Raw, "meta.versionId").String(), "a match was updated")
		}
	})

	t.Run("conditional delete removes the single match", func(t *testing.T) {
		id := c.create(t, identified(family, sys, "cd")).Get("id").String()
		r := c.do(t, http.MethodDelete, "Patient?"+query("cd"), nil)
		require.Contains(t, []int{http.StatusOK, http.StatusNoContent}, r.Status, "%s", r)
		requireOutcome(t, c.do(t, http.MethodGet, "Patient/"+id, nil), http.StatusGone)
	})

	t.Run("conditional delete with several matches follows the declared conditionalDelete", func(t *testing.T) {
		a := c.create(t, identified(family, sys, "cddup")).Get("id").String()
		b := c.create(t, identified(family, sys, "cddup")).Get("id").String()
		r := c.do(t, http.MethodDelete, "Patient?"+query("cddup"), nil)
		if declaredConditionalDelete(t, c, "Patient") == "multiple" {
			require.Contains(t, []int{http.StatusOK, http.StatusNoContent}, r.Status, "%s", r)
			requireOutcome(t, c.do(t, http.MethodGet, "Patient/"+a, nil), http.StatusGone)
			requireOutcome(t, c.do(t, http.MethodGet, "Patient/"+b, nil), http.StatusGone)
			return
		}
		requireOutcome(t, r, http.StatusPreconditionFailed)
		c.read(t, "Patient", a)
		c.read(t, "Patient", b)
	})

	t.Run("conditional read", func(t *testing.T) {
		created := c.create(t, identified(family, sys, "cr"))
		id := created.Get("id").String()
		lastUpdated := parseInstant(t, created.Get("meta.lastUpdated").String())
		cases := []struct {
			name   string
			header header
			want   int
		}{
			{"If-None-Match current version is 304", header{"If-None-Match", weak("1")}, http.StatusNotModified},
			{"If-None-Match other version is 200", header{"If-None-Match", weak("7")}, http.StatusOK},
			{"If-Modified-Since after the change is 304", header{"If-Modified-Since", lastUpdated.Add(time.Hour).UTC().Format(http.TimeFormat)}, http.StatusNotModified},
			{"If-Modified-Since before the change is 200", header{"If-Modified-Since", lastUpdated.Add(-time.Hour).UTC().Format(http.TimeFormat)}, http.StatusOK},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := c.do(t, http.MethodGet, "Patient/"+id, nil, tc.header)
				require.Equal(t, tc.want, r.Status, "%s", r)
				if tc.want == http.StatusNotModified {
					assert.Empty(t, r.Body, "304 has no body")
				} else {
					assert.Equal(t, id, r.get("id").String())
				}
			})
		}
	})
}

// declaredConditionalDelete returns the CapabilityStatement's
// conditionalDelete for typ.
func declaredConditionalDelete(t testing.TB, c *client, typ string) string {
	t.Helper()
	r := c.do(t, http.MethodGet, "metadata", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	for _, res := range r.get("rest.0.resource").Array() {
		if res.Get("type").String() == typ {
			return res.Get("conditionalDelete").String()
		}
	}
	return ""
}
