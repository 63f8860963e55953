package rest_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/store"
)

// TestRender: a registered renderer completes resources of its type on
// read, vread, history, search matches and includes, learns when the
// caller asked for a summary, and a failing one is a 500, not a broken
// Bundle.
func TestRender(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	e.srv.Render("Group", func(_ context.Context, res *store.Resource, summary bool) ([]byte, error) {
		if fail.Load() {
			return nil, errors.New("index unreadable")
		}
		return sjson.SetBytes(res.Body, "name", map[bool]string{true: "summary", false: "rendered"}[summary])
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
