package rest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/store"
)

// TestRender: a registered renderer completes resources of its type on
// read, vread, history, search matches and includes, learns when the
// caller asked for a summary, and a failing one is a 500, not a broken
// Bundle.
func TestRender(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	e.srv.Render("Group", func(_ context.Context, res *store.Resource, w io.Writer, summary bool) error {
		if fail.Load() {
			return errors.New("index unreadable")
		}
		b, err := sjson.SetBytes(res.Body, "name", map[bool]string{true: "summary", false: "rendered"}[summary])
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	p := e.create(patient("Render")).Get("id").String()
	g := e.create(map[string]any{"resourceType": "Group", "type": "person", "actual": true,
		"member": []any{map[string]any{"entity": map[string]any{"reference": "Patient/" + p}}}}).Get("id").String()
	for _, tc := range []struct {
		path, at, want string
	}{
		{"Group/" + g, "name", "rendered"},
		{"Group/" + g + "?_summary=true", "name", "summary"},
		{"Group/" + g + "/_history/1", "name", "rendered"},
		{"Group/" + g + "/_history", "entry.0.resource.name", "rendered"},
		{"Group/_history", "entry.0.resource.name", "rendered"},
		{"Group?_id=" + g, "entry.0.resource.name", "rendered"},
		{"Group?_id=" + g + "&_summary=true", "entry.0.resource.name", "summary"},
		{"Group?_id=" + g + "&_elements=name,extension", "entry.0.resource.name", "summary"},
		{"Group?_id=" + g + "&_elements=name,member", "entry.0.resource.name", "rendered"},
		{"Patient?_id=" + p + "&_revinclude=Group:member", "entry.1.resource.name", "rendered"},
		{"Patient/" + p, "name.0.family", "Render"},
	} {
		r := e.do("GET", tc.path, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", tc.path, r)
		assert.Equal(t, tc.want, r.get(tc.at).String(), tc.path)
	}
	fail.Store(true)
	for _, path := range []string{"Group/" + g, "Group?_id=" + g, "Group/" + g + "/_history"} {
		r := e.do("GET", path, nil)
		assert.Equal(t, http.StatusInternalServerError, r.Status, path)
		assert.Equal(t, "OperationOutcome", r.get("resourceType").String(), path)
	}
}

// TestOperationFormats: an operation declaring text/csv is reached with
// Accept or _format text/csv; other endpoints still answer 406.
func TestOperationFormats(t *testing.T) {
	e := newEnv(t)
	e.srv.Operation(rest.Operation{Name: "csv-report", Level: rest.Instance, Types: []string{"Group"}, Formats: []string{"text/csv"},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/csv")
			_, _ = w.Write([]byte("a,b\n"))
		})})
	for _, tc := range []struct {
		path   string
		hdr    []string
		status int
	}{
		{"Group/g1/$csv-report", []string{"Accept", "text/csv"}, http.StatusOK},
		{"Group/g1/$csv-report?_format=text/csv", nil, http.StatusOK},
		{"Group/g1/$csv-report", []string{"Accept", "text/csv;q=0"}, http.StatusNotAcceptable},
		{"Group/g1/$csv-report", []string{"Accept", "application/xml"}, http.StatusNotAcceptable},
		{"Group/g1", []string{"Accept", "text/csv"}, http.StatusNotAcceptable},
		{"Group/$csv-report", []string{"Accept", "text/csv"}, http.StatusNotAcceptable},
	} {
		r := e.do("GET", tc.path, nil, tc.hdr...)
		assert.Equal(t, tc.status, r.Status, "%s %v: %s", tc.path, tc.hdr, r)
	}
}

// TestRenderFailsMidStream: a read streams its rendered body; a renderer
// failing after it started writing breaks the transfer instead of
// delivering a truncated resource with 200.
func TestRenderFailsMidStream(t *testing.T) {
	e := newEnv(t)
	e.srv.Render("Group", func(_ context.Context, res *store.Resource, w io.Writer, _ bool) error {
		if _, err := w.Write(res.Body[:len(res.Body)-1]); err != nil {
			return err
		}
		_, err := w.Write([]byte(`,"member":[`))
		if err != nil {
			return err
		}
		return errors.New("index unreadable")
	})
	g := e.create(map[string]any{"resourceType": "Group", "type": "person", "actual": true}).Get("id").String()
	res, err := http.Get(e.base + "/Group/" + g)
	if err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	assert.Error(t, err, "the client sees a broken transfer")
	assert.Zero(t, e.srv.Panics(), "an aborted response is not a panic")
}
