package rest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/interaction"
)

func txEntry(fullURL string, res map[string]any, method, url string, extra ...string) map[string]any {
	req := map[string]any{"method": method, "url": url}
	for i := 0; i+1 < len(extra); i += 2 {
		req[extra[i]] = extra[i+1]
	}
	e := map[string]any{"request": req}
	if fullURL != "" {
		e["fullUrl"] = fullURL
	}
	if res != nil {
		e["resource"] = res
	}
	return e
}

func txBundle(typ string, entries ...map[string]any) map[string]any {
	list := make([]any, len(entries))
	for i, e := range entries {
		list[i] = e
	}
	return map[string]any{"resourceType": "Bundle", "type": typ, "entry": list}
}

func TestTransaction(t *testing.T) {
	e := newEnv(t)
	pURN := "urn:uuid:" + interaction.NewID()
	obs := observation(pURN)
	// A reference outside Reference.reference must be rewritten too.
	obs["note"] = []any{map[string]any{"text": "about", "authorReference": map[string]any{"reference": pURN}}}
	obs["text"] = map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml"><a href="` + pURN + `">patient</a></div>`}
	existing := e.create(patient("TxExisting"))
	upd := patient("TxExisting", "Updated")
	upd["id"] = existing.Get("id").String()
	toDelete := e.create(patient("TxDelete")).Get("id").String()
	withMRN := patient("TxCond")
	withMRN["identifier"] = []any{map[string]any{"system": "urn:test:tx", "value": "1"}}

	tx := txBundle("transaction",
		txEntry("urn:uuid:"+interaction.NewID(), obs, "POST", "Observation"),
		txEntry(pURN, patient("TxNew"), "POST", "Patient"),
		txEntry("", upd, "PUT", "Patient/"+upd["id"].(string)),
		txEntry("", nil, "DELETE", "Patient/"+toDelete),
		txEntry("", withMRN, "POST", "Patient", "ifNoneExist", "identifier=urn:test:tx|1"),
		txEntry("", nil, "GET", "Patient/"+upd["id"].(string)),
	)
	r := e.do(http.MethodPost, "", tx)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	assert.Equal(t, "transaction-response", r.get("type").String())
	ents := r.get("entry").Array()
	require.Len(t, ents, 6)
	wantStatus := []string{"201", "201", "200", "204", "201", "200"}
	for i, en := range ents {
		assert.True(t, strings.HasPrefix(en.Get("response.status").String(), wantStatus[i]), "entry %d: %s", i, en.Raw)
	}
	obsID := strings.Split(ents[0].Get("response.location").String(), "/")[1]
	patID := strings.Split(ents[1].Get("response.location").String(), "/")[1]
	got := e.do(http.MethodGet, "Observation/"+obsID, nil)
	require.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, "Patient/"+patID, got.get("subject.reference").String())
	assert.Equal(t, "Patient/"+patID, got.get("note.0.authorReference.reference").String())
	assert.Contains(t, got.get("text.div").String(), `href="Patient/`+patID+`"`, "narrative links are rewritten")
	assert.Equal(t, http.StatusGone, e.do(http.MethodGet, "Patient/"+toDelete, nil).Status)
	assert.Equal(t, "Updated", ents[5].Get("resource.name.0.given.0").String(), "GET runs after the writes")

	t.Run("conditional create inside a transaction matches", func(t *testing.T) {
		r := e.do(http.MethodPost, "", txBundle("transaction",
			txEntry("", withMRN, "POST", "Patient", "ifNoneExist", "identifier=urn:test:tx|1")))
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.True(t, strings.HasPrefix(r.get("entry.0.response.status").String(), "200"), "%s", r)
		ids, _ := e.searchAll("Patient?identifier=urn:test:tx|1")
		assert.Len(t, ids, 1)
	})

	t.Run("conditional references resolve to the single match", func(t *testing.T) {
		o := observation("Patient?identifier=urn:test:tx|1")
		r := e.do(http.MethodPost, "", txBundle("transaction", txEntry("", o, "POST", "Observation")))
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		loc := r.get("entry.0.response.location").String()
		got := e.do(http.MethodGet, strings.Join(strings.Split(loc, "/")[:2], "/"), nil)
		ids, _ := e.searchAll("Patient?identifier=urn:test:tx|1")
		require.Len(t, ids, 1)
		assert.Equal(t, "Patient/"+ids[0], got.get("subject.reference").String())

		o = observation("Patient?identifier=urn:test:tx|nobody")
		r = e.do(http.MethodPost, "", txBundle("transaction", txEntry("", o, "POST", "Observation")))
		assert.Equal(t, http.StatusPreconditionFailed, r.Status, "%s", r)
		isOutcome(t, r)
	})

	t.Run("invalid entry writes nothing", func(t *testing.T) {
		cases := []struct {
			name   string
			bad    map[string]any
			status int
		}{
			{"missing required element", txEntry("", map[string]any{"resourceType": "Observation", "code": map[string]any{"text": "x"}}, "POST", "Observation"), http.StatusBadRequest},
			{"bad code", txEntry("", map[string]any{"resourceType": "Patient", "gender": "F"}, "POST", "Patient"), http.StatusBadRequest},
			{"stale ifMatch", txEntry("", upd, "PUT", "Patient/"+upd["id"].(string), "ifMatch", `W/"1"`), http.StatusPreconditionFailed},
			{"unknown type", txEntry("", map[string]any{"resourceType": "Nope"}, "POST", "Nope"), http.StatusBadRequest},
			{"no url", txEntry("", nil, "DELETE", ""), http.StatusBadRequest},
			{"PUT id mismatch", txEntry("", upd, "PUT", "Patient/other"), http.StatusBadRequest},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				marker := "Rollback" + strings.ReplaceAll(tc.name, " ", "")
				r := e.do(http.MethodPost, "", txBundle("transaction",
					txEntry("", patient(marker), "POST", "Patient"),
					tc.bad,
					txEntry("", patient(marker), "POST", "Patient"),
				))
				assert.Equal(t, tc.status, r.Status, "%s", r)
				isOutcome(t, r)
				assert.Contains(t, r.get("issue.0.expression.0").String(), "Bundle.entry[1]", "%s", r)
				ids, _ := e.searchAll("Patient?family=" + marker)
				assert.Empty(t, ids, "nothing written")
			})
		}
	})

	t.Run("batch entries are independent", func(t *testing.T) {
		r := e.do(http.MethodPost, "", txBundle("batch",
			txEntry("", patient("BatchOK"), "POST", "Patient"),
			txEntry("", map[string]any{"resourceType": "Patient", "gender": "F"}, "POST", "Patient"),
			txEntry("", nil, "GET", "Patient/does-not-exist"),
			txEntry("", nil, "GET", "Patient?family=BatchOK"),
		))
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Equal(t, "batch-response", r.get("type").String())
		ents := r.get("entry").Array()
		require.Len(t, ents, 4)
		assert.True(t, strings.HasPrefix(ents[0].Get("response.status").String(), "201"), ents[0].Raw)
		assert.True(t, strings.HasPrefix(ents[1].Get("response.status").String(), "400"), ents[1].Raw)
		assert.Equal(t, "OperationOutcome", ents[1].Get("response.outcome.resourceType").String())
		assert.True(t, strings.HasPrefix(ents[2].Get("response.status").String(), "404"), ents[2].Raw)
		assert.Equal(t, "searchset", ents[3].Get("resource.type").String())
		ids, _ := e.searchAll("Patient?family=BatchOK")
		assert.Len(t, ids, 1)
	})

	t.Run("other bundle types are rejected", func(t *testing.T) {
		r := e.do(http.MethodPost, "", txBundle("collection", txEntry("", patient("X"), "POST", "Patient")))
		assert.Equal(t, http.StatusBadRequest, r.Status)
		isOutcome(t, r)
	})
	assert.Zero(t, e.srv.Panics())
}
