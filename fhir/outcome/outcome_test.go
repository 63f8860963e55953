package outcome

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type wire struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string   `json:"severity"`
		Code        string   `json:"code"`
		Diagnostics string   `json:"diagnostics"`
		Expression  []string `json:"expression"`
	} `json:"issue"`
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) wire {
	t.Helper()
	assert.Equal(t, "application/fhir+json; charset=utf-8", rec.Header().Get("Content-Type"))
	var w wire
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &w))
	require.Equal(t, "OperationOutcome", w.ResourceType)
	return w
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		diagnostic string
		expression []string
	}{
		{"http error keeps status and issue", Errorf(http.StatusConflict, "conflict", "version %d is stale", 3), 409, "conflict", "version 3 is stale", nil},
		{"wrapped http error", fmt.Errorf("commit: %w", &HTTPError{Status: 400, Issues: []Issue{{Severity: "error", Code: "required", Diagnostics: "missing", Expression: []string{"Observation.status"}}}}), 400, "required", "missing", []string{"Observation.status"}},
		{"other errors hide internals", fmt.Errorf("badger: disk path /secret"), 500, "exception", "internal error", nil},
		{"unknown issue code falls back to processing", Errorf(422, "no-such-code", "x"), 422, "processing", "x", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tt.err)
			assert.Equal(t, tt.status, rec.Code)
			w := decode(t, rec)
			require.Len(t, w.Issue, 1)
			assert.Equal(t, "error", w.Issue[0].Severity)
			assert.Equal(t, tt.code, w.Issue[0].Code)
			assert.Equal(t, tt.diagnostic, w.Issue[0].Diagnostics)
			assert.Equal(t, tt.expression, w.Issue[0].Expression)
		})
	}
}

func TestErrorAndNew(t *testing.T) {
	rec := httptest.NewRecorder()
	Error(rec, http.StatusNotFound, "not-found", "Patient/x not found")
	assert.Equal(t, 404, rec.Code)
	w := decode(t, rec)
	assert.Equal(t, "not-found", w.Issue[0].Code)

	rec = httptest.NewRecorder()
	Write(rec, http.StatusAccepted, New("information", "informational", "accepted"))
	w = decode(t, rec)
	assert.Equal(t, "information", w.Issue[0].Severity)
	assert.Equal(t, "informational: accepted", (&HTTPError{Issues: []Issue{{Code: "informational", Diagnostics: "accepted"}}}).Error())
}
