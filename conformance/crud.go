package conformance

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// idPattern is the R4 id datatype.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// parseInstant parses a FHIR instant (RFC 3339 with optional fraction).
func parseInstant(t testing.TB, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err, "instant %q", s)
	return ts
}

func checkCRUD(t *testing.T, c *client, run runID) {
	family := run.family("Crud")
	body := patient(family, "Ada")
	body["id"] = "client-chosen-id-must-be-ignored"
	body["active"] = true
	body["birthDate"] = "1970-01-01"
	body["extension"] = []any{map[string]any{"url": "http://example.org/fhir/StructureDefinition/conformance", "valueString": "kept as sent"}}
	before := time.Now()

	r := c.do(t, http.MethodPost, "Patient", body)
	require.Equal(t, http.StatusCreated, r.Status, "create: %s", r)
	created := c.bodyOrLocation(t, r)
	id := created.Get("id").String()

	t.Run("create returns 201 with Location, ETag and server id and meta", func(t *testing.T) {
		assert.True(t, idPattern.MatchString(id), "server id %q is not a FHIR id", id)
		assert.NotEqual(t, "client-chosen-id-must-be-ignored", id, "server kept the client's id on create")
		assert.Equal(t, c.base+"/Patient/"+id+"/_history/1", r.Header.Get("Location"), "Location is [base]/Patient/[id]/_history/1")
		assert.Equal(t, `W/"1"`, r.Header.Get("ETag"))
		assert.Equal(t, "1", created.Get("meta.versionId").String())
		lu := parseInstant(t, created.Get("meta.lastUpdated").String())
		assert.WithinDuration(t, before, lu, 10*time.Minute, "meta.lastUpdated far from now")
		assert.Contains(t, r.Header.Get("Content-Type"), "json")
	})

	t.Run("read returns the resource as created", func(t *testing.T) {
		rr := c.do(t, http.MethodGet, "Patient/"+id, nil)
		require.Equal(t, http.StatusOK, rr.Status, "%s", rr)
		assert.Equal(t, `W/"1"`, rr.Header.Get("ETag"))
		assert.Contains(t, rr.Header.Get("Content-Type"), "json")
		got := gjson.ParseBytes(rr.Body)
		assert.Equal(t, "Patient", got.Get("resourceType").String())
		assert.Equal(t, id, got.Get("id").String())
		assert.Equal(t, "1", got.Get("meta.versionId").String())
		assert.Equal(t, created.Get("meta.lastUpdated").String(), got.Get("meta.lastUpdated").String())
		assert.Equal(t, family, got.Get("name.0.family").String())
		assert.Equal(t, "Ada", got.Get("name.0.given.0").String())
		assert.True(t, got.Get("active").Bool())
		assert.Equal(t, "1970-01-01", got.Get("birthDate").String())
		assert.Equal(t, "kept as sent", got.Get("extension.0.valueString").String(), "extension lost: %s", rr)
		lm, err := http.ParseTime(rr.Header.Get("Last-Modified"))
		if assert.NoError(t, err, "Last-Modified %q", rr.Header.Get("Last-Modified")) {
			lu := parseInstant(t, got.Get("meta.lastUpdated").String())
			assert.Equal(t, lu.UTC().Truncate(time.Second), lm.UTC(), "Last-Modified is meta.lastUpdated")
		}
	})

	t.Run("read honours _format and HEAD", func(t *testing.T) {
		for _, f := range []string{"json", "application/json", "application/fhir+json"} {
			rr := c.do(t, http.MethodGet, "Patient/"+id+"?_format="+url.QueryEscape(f), nil, header{"Accept", "*/*"})
			require.Equal(t, http.StatusOK, rr.Status, "_format=%s: %s", f, rr)
			assert.Contains(t, rr.Header.Get("Content-Type"), "json", "_format=%s", f)
			assert.Equal(t, id, rr.get("id").String())
		}
		h := c.do(t, http.MethodHead, "Patient/"+id, nil)
		assert.Equal(t, http.StatusOK, h.Status, "%s", h)
		assert.Empty(t, h.Body)
		assert.Equal(t, `W/"1"`, h.Header.Get("ETag"))
	})

	v1 := created.Get("meta.lastUpdated").String()
	body["id"] = id
	body["name"] = []any{map[string]any{"family": family, "given": []any{"Grace"}}}
	ur := c.do(t, http.MethodPut, "Patient/"+id, body)

	t.Run("update makes version 2 with ETag", func(t *testing.T) {
		require.Equal(t, http.StatusOK, ur.Status, "%s", ur)
		assert.Equal(t, `W/"2"`, ur.Header.Get("ETag"))
		updated := c.bodyOrLocation(t, ur)
		assert.Equal(t, "2", updated.Get("meta.versionId").String())
		assert.False(t, parseInstant(t, updated.Get("meta.lastUpdated").String()).Before(parseInstant(t, v1)), "lastUpdated went backwards")
		got := c.read(t, "Patient", id)
		assert.Equal(t, "2", got.Get("meta.versionId").String())
		assert.Equal(t, "Grace", got.Get("name.0.given.0").String())
	})

	t.Run("vread returns each version", func(t *testing.T) {
		r1 := c.do(t, http.MethodGet, "Patient/"+id+"/_history/1", nil)
		require.Equal(t, http.StatusOK, r1.Status, "%s", r1)
		assert.Equal(t, "1", r1.get("meta.versionId").String())
		assert.Equal(t, "Ada", r1.get("name.0.given.0").String(), "version 1 changed by the update")
		assert.Equal(t, `W/"1"`, r1.Header.Get("ETag"))
		r2 := c.do(t, http.MethodGet, "Patient/"+id+"/_history/2", nil)
		require.Equal(t, http.StatusOK, r2.Status, "%s", r2)
		assert.Equal(t, "Grace", r2.get("name.0.given.0").String())
	})

	t.Run("vread of an unknown version is 404", func(t *testing.T) {
		requireOutcome(t, c.do(t, http.MethodGet, "Patient/"+id+"/_history/999", nil), http.StatusNotFound)
	})

	t.Run("update with a body id that differs from the URL is 400", func(t *testing.T) {
		b := patient(family)
		b["id"] = run.id("other")
		requireOutcome(t, c.do(t, http.MethodPut, "Patient/"+id, b), http.StatusBadRequest)
		assert.Equal(t, "2", c.read(t, "Patient", id).Get("meta.versionId").String(), "rejected update changed the resource")
	})

	t.Run("update without a body id is 400", func(t *testing.T) {
		requireOutcome(t, c.do(t, http.MethodPut, "Patient/"+id, patient(family)), http.StatusBadRequest)
	})

	t.Run("update of a new id creates it with 201", func(t *testing.T) {
		newID := run.id("put-create")
		b := patient(family, "Put")
		b["id"] = newID
		pr := c.do(t, http.MethodPut, "Patient/"+newID, b)
		require.Equal(t, http.StatusCreated, pr.Status, "%s", pr)
		assert.Equal(t, `W/"1"`, pr.Header.Get("ETag"))
		got := c.read(t, "Patient", newID)
		assert.Equal(t, newID, got.Get("id").String())
		assert.Equal(t, "1", got.Get("meta.versionId").String())
		again := c.do(t, http.MethodPut, "Patient/"+newID, b)
		require.Equal(t, http.StatusOK, again.Status, "second PUT: %s", again)
		assert.Equal(t, `W/"2"`, again.Header.Get("ETag"))
	})

	t.Run("delete then read is 410 and history is kept", func(t *testing.T) {
		victim := c.create(t, patient(family, "Deleted")).Get("id").String()
		dr := c.do(t, http.MethodDelete, "Patient/"+victim, nil)
		require.Contains(t, []int{http.StatusOK, http.StatusNoContent}, dr.Status, "%s", dr)
		requireOutcome(t, c.do(t, http.MethodGet, "Patient/"+victim, nil), http.StatusGone)
		vr := c.do(t, http.MethodGet, "Patient/"+victim+"/_history/1", nil)
		assert.Equal(t, http.StatusOK, vr.Status, "vread of a version before the delete: %s", vr)
		// http.html vread: a version that is a deletion answers 410.
		requireOutcome(t, c.do(t, http.MethodGet, "Patient/"+victim+"/_history/2", nil), http.StatusGone)
		matches, _ := c.searchAll(t, "Patient?_id="+victim)
		assert.Empty(t, matches, "deleted resource still found by search")
		again := c.do(t, http.MethodDelete, "Patient/"+victim, nil)
		assert.Contains(t, []int{http.StatusOK, http.StatusNoContent, http.StatusNotFound}, again.Status, "second delete: %s", again)
	})

	t.Run("update after delete revives with a higher version", func(t *testing.T) {
		victim := c.create(t, patient(family, "Revived")).Get("id").String()
		dr := c.do(t, http.MethodDelete, "Patient/"+victim, nil)
		require.Contains(t, []int{http.StatusOK, http.StatusNoContent}, dr.Status, "%s", dr)
		b := patient(family, "Revived")
		b["id"] = victim
		pr := c.do(t, http.MethodPut, "Patient/"+victim, b)
		require.Contains(t, []int{http.StatusOK, http.StatusCreated}, pr.Status, "%s", pr)
		got := c.read(t, "Patient", victim)
		assert.Greater(t, got.Get("meta.versionId").Int(), int64(1), "version after delete+update")
	})

	t.Run("delete of an unknown id is not a server error", func(t *testing.T) {
		dr := c.do(t, http.MethodDelete, "Patient/"+run.id("never-existed"), nil)
		assert.Contains(t, []int{http.StatusOK, http.StatusNoContent, http.StatusNotFound}, dr.Status, "%s", dr)
	})

	t.Run("Prefer return=minimal gives no body", func(t *testing.T) {
		r := c.do(t, http.MethodPost, "Patient", patient(family, "Minimal"), header{"Prefer", "return=minimal"})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r)
		assert.Empty(t, r.Body, "body despite return=minimal")
		assert.NotEmpty(t, r.Header.Get("Location"))
		assert.Equal(t, `W/"1"`, r.Header.Get("ETag"))
	})

	t.Run("Prefer return=OperationOutcome gives an OperationOutcome", func(t *testing.T) {
		r := c.do(t, http.MethodPost, "Patient", patient(family, "Outcome"), header{"Prefer", "return=OperationOutcome"})
		require.Equal(t, http.StatusCreated, r.Status, "%s", r)
		assert.Equal(t, "OperationOutcome", r.get("resourceType").String(), "%s", r)
	})

	t.Run("If-Match", func(t *testing.T) { checkIfMatch(t, c, run) })
}

func checkIfMatch(t *testing.T, c *client, run runID) {
	family := run.family("IfMatch")
	id := c.create(t, patient(family, "V1")).Get("id").String()
	b := patient(family, "V2")
	b["id"] = id

	t.Run("current version succeeds", func(t *testing.T) {
		r := c.do(t, http.MethodPut, "Patient/"+id, b, header{"If-Match", weak("1")})
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Equal(t, `W/"2"`, r.Header.Get("ETag"))
	})

	t.Run("stale version is 412 and changes nothing", func(t *testing.T) {
		b["name"] = []any{map[string]any{"family": family, "given": []any{"Stale"}}}
		r := c.do(t, http.MethodPut, "Patient/"+id, b, header{"If-Match", weak("1")})
		requireOutcome(t, r, http.StatusPreconditionFailed)
		got := c.read(t, "Patient", id)
		assert.Equal(t, "2", got.Get("meta.versionId").String())
		assert.Equal(t, "V2", got.Get("name.0.given.0").String())
	})

	t.Run("stale version on delete is 412", func(t *testing.T) {
		r := c.do(t, http.MethodDelete, "Patient/"+id, nil, header{"If-Match", weak("1")})
		requireOutcome(t, r, http.StatusPreconditionFailed)
		c.read(t, "Patient", id)
	})

	t.Run("concurrent updates with the same If-Match: exactly one wins", func(t *testing.T) {
		const n = 8
		current := c.read(t, "Patient", id).Get("meta.versionId").String()
		statuses := statusesOf(parallel(t, n, func(int) (*response, error) {
			body := patient(family, "Racer")
			body["id"] = id
			return c.try(t.Context(), http.MethodPut, "Patient/"+id, body, header{"If-Match", weak(current)})
		}))
		wins, conflicts := 0, 0
		for _, s := range statuses {
			switch s {
			case http.StatusOK, http.StatusCreated:
				wins++
			case http.StatusPreconditionFailed:
				conflicts++
			}
		}
		assert.Equal(t, 1, wins, "statuses %v", statuses)
		assert.Equal(t, n-1, conflicts, "statuses %v", statuses)
		got := c.read(t, "Patient", id).Get("meta.versionId").Int()
		assert.Equal(t, gjson.Parse(current).Int()+1, got, "exactly one new version")
	})
}
