package rest_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCRUD(t *testing.T) {
	e := newEnv(t)

	r := e.do(http.MethodPost, "Patient", patient("Crud"))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	id := r.get("id").String()
	require.NotEmpty(t, id)
	assert.Equal(t, e.base+"/Patient/"+id+"/_history/1", r.Header.Get("Location"))
	assert.Equal(t, `W/"1"`, r.Header.Get("ETag"))
	assert.NotEmpty(t, r.Header.Get("Last-Modified"))
	assert.Equal(t, "1", r.get("meta.versionId").String())
	assert.Contains(t, r.Header.Get("Content-Type"), "application/fhir+json")

	t.Run("read", func(t *testing.T) {
		r := e.do(http.MethodGet, "Patient/"+id, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Equal(t, "Crud", r.get("name.0.family").String())
		assert.Equal(t, `W/"1"`, r.Header.Get("ETag"))
	})
	t.Run("conditional read", func(t *testing.T) {
		r := e.do(http.MethodGet, "Patient/"+id, nil, "If-None-Match", `W/"1"`)
		assert.Equal(t, http.StatusNotModified, r.Status)
		r = e.do(http.MethodGet, "Patient/"+id, nil, "If-None-Match", `W/"9"`)
		assert.Equal(t, http.StatusOK, r.Status)
		lm := r.Header.Get("Last-Modified")
		r = e.do(http.MethodGet, "Patient/"+id, nil, "If-Modified-Since", lm)
		assert.Equal(t, http.StatusNotModified, r.Status)
		r = e.do(http.MethodGet, "Patient/"+id, nil, "If-Modified-Since", "Mon, 02 Jan 2006 15:04:05 GMT")
		assert.Equal(t, http.StatusOK, r.Status)
	})

	upd := patient("Crud", "Beth")
	upd["id"] = id
	t.Run("update", func(t *testing.T) {
		r := e.do(http.MethodPut, "Patient/"+id, upd)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Equal(t, `W/"2"`, r.Header.Get("ETag"))
		assert.Equal(t, "Beth", r.get("name.0.given.0").String())
	})
	t.Run("vread", func(t *testing.T) {
		for v, given := range map[string]string{"1": "Ann", "2": "Beth"} {
			r := e.do(http.MethodGet, "Patient/"+id+"/_history/"+v, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r)
			assert.Equal(t, given, r.get("name.0.given.0").String())
			assert.Equal(t, `W/"`+v+`"`, r.Header.Get("ETag"))
		}
		r := e.do(http.MethodGet, "Patient/"+id+"/_history/7", nil)
		assert.Equal(t, http.StatusNotFound, r.Status)
		isOutcome(t, r)
	})
	t.Run("update body id mismatch is 400", func(t *testing.T) {
		bad := patient("Crud")
		bad["id"] = "other"
		r := e.do(http.MethodPut, "Patient/"+id, bad)
		assert.Equal(t, http.StatusBadRequest, r.Status)
		isOutcome(t, r)
		assert.Equal(t, "Patient.id", r.get("issue.0.expression.0").String())
		r = e.do(http.MethodPut, "Patient/"+id, patient("Crud"))
		assert.Equal(t, http.StatusBadRequest, r.Status)
	})
	t.Run("create on update with client id", func(t *testing.T) {
		p := patient("Client")
		p["id"] = "client-chosen-1"
		r := e.do(http.MethodPut, "Patient/client-chosen-1", p)
		require.Equal(t, http.StatusCreated, r.Status, "%s", r)
		assert.Equal(t, e.base+"/Patient/client-chosen-1/_history/1", r.Header.Get("Location"))
	})
	t.Run("prefer return", func(t *testing.T) {
		r := e.do(http.MethodPost, "Patient", patient("Pref"), "Prefer", "return=minimal")
		assert.Equal(t, http.StatusCreated, r.Status)
		assert.Empty(t, r.Body)
		assert.NotEmpty(t, r.Header.Get("Location"))
		r = e.do(http.MethodPost, "Patient", patient("Pref"), "Prefer", "return=OperationOutcome")
		assert.Equal(t, http.StatusCreated, r.Status)
		isOutcome(t, r)
	})
	t.Run("delete", func(t *testing.T) {
		r := e.do(http.MethodDelete, "Patient/"+id, nil)
		require.Equal(t, http.StatusNoContent, r.Status, "%s", r)
		r = e.do(http.MethodGet, "Patient/"+id, nil)
		assert.Equal(t, http.StatusGone, r.Status)
		isOutcome(t, r)
		r = e.do(http.MethodGet, "Patient/"+id+"/_history/2", nil)
		assert.Equal(t, http.StatusOK, r.Status, "old versions stay readable")
		r = e.do(http.MethodGet, "Patient/"+id+"/_history/3", nil)
		assert.Equal(t, http.StatusGone, r.Status, "the deletion version")
		r = e.do(http.MethodDelete, "Patient/never-existed", nil)
		assert.Equal(t, http.StatusNoContent, r.Status)
		// Revive.
		r = e.do(http.MethodPut, "Patient/"+id, upd)
		assert.Equal(t, http.StatusCreated, r.Status)
		assert.Equal(t, `W/"4"`, r.Header.Get("ETag"))
	})
	t.Run("read unknown is 404", func(t *testing.T) {
		r := e.do(http.MethodGet, "Patient/nope", nil)
		assert.Equal(t, http.StatusNotFound, r.Status)
		isOutcome(t, r)
		r = e.do(http.MethodGet, "NotAType/x", nil)
		assert.Equal(t, http.StatusNotFound, r.Status)
		isOutcome(t, r)
	})
	assert.Zero(t, e.srv.Panics())
}

func TestIfMatch(t *testing.T) {
	e := newEnv(t)
	p := e.create(patient("Match"))
	id := p.Get("id").String()
	body := patient("Match", "V2")
	body["id"] = id

	r := e.do(http.MethodPut, "Patient/"+id, body, "If-Match", `W/"1"`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	r = e.do(http.MethodPut, "Patient/"+id, body, "If-Match", `W/"1"`)
	assert.Equal(t, http.StatusPreconditionFailed, r.Status, "stale")
	isOutcome(t, r)
	r = e.do(http.MethodDelete, "Patient/"+id, nil, "If-Match", `W/"1"`)
	assert.Equal(t, http.StatusPreconditionFailed, r.Status, "stale delete")
	r = e.do(http.MethodPut, "Patient/"+id, body, "If-Match", `garbage`)
	assert.Equal(t, http.StatusBadRequest, r.Status)

	t.Run("concurrent updates: exactly one winner", func(t *testing.T) {
		cur := e.do(http.MethodGet, "Patient/"+id, nil)
		etag := cur.Header.Get("ETag")
		const n = 16
		var wg sync.WaitGroup
		codes := make([]int, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := patient("Match", fmt.Sprintf("C%d", i))
				b["id"] = id
				codes[i] = e.do(http.MethodPut, "Patient/"+id, b, "If-Match", etag).Status
			}()
		}
		wg.Wait()
		wins := 0
		for _, c := range codes {
			switch c {
			case http.StatusOK:
				wins++
			case http.StatusPreconditionFailed:
			default:
				t.Errorf("unexpected status %d", c)
			}
		}
		assert.Equal(t, 1, wins, "codes %v", codes)
	})
}

func TestConcurrentCreateOnUpdate(t *testing.T) {
	e := newEnv(t)
	const n = 10
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := patient("Race", fmt.Sprintf("R%d", i))
			p["id"] = "race-1"
			codes[i] = e.do(http.MethodPut, "Patient/race-1", p).Status
		}()
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		switch c {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Errorf("unexpected status %d", c)
		}
	}
	assert.Equal(t, 1, created, "statuses %v", codes)
	r := e.do(http.MethodGet, "Patient/race-1", nil)
	assert.Equal(t, fmt.Sprint(n), r.get("meta.versionId").String())
}

func TestConditional(t *testing.T) {
	e := newEnv(t)
	withID := func(v string) map[string]any {
		p := patient("Cond")
		p["identifier"] = []any{map[string]any{"system": "urn:test:mrn", "value": v}}
		return p
	}

	t.Run("conditional create twice creates one", func(t *testing.T) {
		r1 := e.do(http.MethodPost, "Patient", withID("A1"), "If-None-Exist", "identifier=urn:test:mrn|A1")
		require.Equal(t, http.StatusCreated, r1.Status, "%s", r1)
		r2 := e.do(http.MethodPost, "Patient", withID("A1"), "If-None-Exist", "identifier=urn:test:mrn|A1")
		require.Equal(t, http.StatusOK, r2.Status, "%s", r2)
		assert.Equal(t, r1.get("id").String(), r2.get("id").String())
		ids, _ := e.searchAll("Patient?identifier=urn:test:mrn|A1")
		assert.Len(t, ids, 1)
	})
	t.Run("concurrent conditional creates make one resource", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.do(http.MethodPost, "Patient", withID("C1"), "If-None-Exist", "identifier=urn:test:mrn|C1")
			}()
		}
		wg.Wait()
		ids, _ := e.searchAll("Patient?identifier=urn:test:mrn|C1")
		assert.Len(t, ids, 1)
	})
	t.Run("several matches is 412", func(t *testing.T) {
		e.create(withID("D1"))
		e.create(withID("D1"))
		r := e.do(http.MethodPost, "Patient", withID("D1"), "If-None-Exist", "identifier=urn:test:mrn|D1")
		assert.Equal(t, http.StatusPreconditionFailed, r.Status)
		isOutcome(t, r)
		r = e.do(http.MethodPut, "Patient?identifier=urn:test:mrn|D1", withID("D1"))
		assert.Equal(t, http.StatusPreconditionFailed, r.Status)
		r = e.do(http.MethodDelete, "Patient?identifier=urn:test:mrn|D1", nil)
		assert.Equal(t, http.StatusPreconditionFailed, r.Status)
	})
	t.Run("conditional update creates then updates", func(t *testing.T) {
		r := e.do(http.MethodPut, "Patient?identifier=urn:test:mrn|U1", withID("U1"))
		require.Equal(t, http.StatusCreated, r.Status, "%s", r)
		id := r.get("id").String()
		b := withID("U1")
		b["gender"] = "male"
		r = e.do(http.MethodPut, "Patient?identifier=urn:test:mrn|U1", b)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Equal(t, id, r.get("id").String())
		assert.Equal(t, "2", r.get("meta.versionId").String())
	})
	t.Run("conditional delete single", func(t *testing.T) {
		id := e.create(withID("X1")).Get("id").String()
		r := e.do(http.MethodDelete, "Patient?identifier=urn:test:mrn|X1", nil)
		require.Equal(t, http.StatusNoContent, r.Status, "%s", r)
		assert.Equal(t, http.StatusGone, e.do(http.MethodGet, "Patient/"+id, nil).Status)
		r = e.do(http.MethodDelete, "Patient?identifier=urn:test:mrn|X1", nil)
		assert.Equal(t, http.StatusNoContent, r.Status, "no match")
	})
	t.Run("unknown criteria parameter is 400", func(t *testing.T) {
		r := e.do(http.MethodPost, "Patient", withID("Z"), "If-None-Exist", "bogus=1")
		assert.Equal(t, http.StatusBadRequest, r.Status)
		isOutcome(t, r)
	})
}

func TestRestartKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	e := openEnv(t, dir)
	want := map[string]string{}
	for i := range 20 {
		r := e.do(http.MethodPost, "Patient", patient(fmt.Sprintf("Restart%d", i)))
		require.Equal(t, http.StatusCreated, r.Status)
		want[r.get("id").String()] = r.get("name.0.family").String()
	}
	tx := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		map[string]any{"fullUrl": "urn:uuid:4f1c6bfa-7f05-4f8b-9f36-0d3c3a1ad001", "resource": patient("RestartTx"), "request": map[string]any{"method": "POST", "url": "Patient"}},
	}}
	r := e.do(http.MethodPost, "", tx)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	txID := strings.Split(r.get("entry.0.response.location").String(), "/")[1]
	want[txID] = "RestartTx"
	e.close()

	e2 := openEnv(t, dir)
	for id, fam := range want {
		r := e2.do(http.MethodGet, "Patient/"+id, nil)
		require.Equal(t, http.StatusOK, r.Status, "Patient/%s lost after restart", id)
		assert.Equal(t, fam, r.get("name.0.family").String())
	}
}
