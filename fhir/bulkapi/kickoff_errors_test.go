package bulkapi_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/tidwall/gjson"
)

// TestKickoffFailuresAreNotTheClients: a body that cannot be read is a
// 400 (only one that is too long is a 413), and a store that cannot be
// read is a 503, never a 404 that would tell the client the Group does
// not exist.
func TestKickoffFailuresAreNotTheClients(t *testing.T) {
	e := newEnv(t, envOptions{})
	h := e.http.Config.Handler
	for _, tc := range []struct {
		name   string
		body   func() *http.Request
		status int
	}{
		{"unreadable body", func() *http.Request {
			return httptest.NewRequest("POST", "/fhir/Patient/$export", iotest.ErrReader(errors.New("connection reset")))
		}, http.StatusBadRequest},
		{"body too large", func() *http.Request {
			return httptest.NewRequest("POST", "/fhir/Patient/$export", strings.NewReader(`{"resourceType":"Parameters","x":"`+strings.Repeat("a", 2<<20)+`"}`))
		}, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.body()
			req.Header.Set("Content-Type", "application/fhir+json")
			req.Header.Set("Prefer", "respond-async")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.Code, rec.Body.String())
			assert.Equal(t, "OperationOutcome", gjson.Get(rec.Body.String(), "resourceType").String())
		})
	}
	t.Run("store failure", func(t *testing.T) {
		assert.NoError(t, e.st.Close())
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/fhir/Group/g1/$export", nil)
		req.Header.Set("Prefer", "respond-async")
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	})
}
