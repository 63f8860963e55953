// Package outcome builds FHIR OperationOutcome resources and writes them as
// HTTP responses. Every error Equitas returns over HTTP goes through it, so
// clients always get an OperationOutcome with a status that matches.
package outcome

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Issue is one problem, in the terms of OperationOutcome.issue.
type Issue struct {
	Severity    string // fatal | error | warning | information
	Code        string // IssueType code: invalid, structure, required, not-found, ...
	Diagnostics string
	// Expression holds FHIRPath locations of the offending elements, e.g.
	// "Observation.status" or "Bundle.entry[2].resource".
	Expression []string
}

// HTTPError is an error that carries its HTTP status and issues; handlers
// return it from the package that detected the problem, and Write renders it.
type HTTPError struct {
	Status int
	Issues []Issue
}

func (e *HTTPError) Error() string {
	if len(e.Issues) == 0 {
		return http.StatusText(e.Status)
	}
	i := e.Issues[0]
	if len(i.Expression) > 0 {
		return fmt.Sprintf("%s: %s (%s)", i.Code, i.Diagnostics, i.Expression[0])
	}
	return i.Code + ": " + i.Diagnostics
}

// Errorf returns an *HTTPError with one issue of severity error.
func Errorf(status int, code, format string, args ...any) *HTTPError {
	return &HTTPError{Status: status, Issues: []Issue{{Severity: "error", Code: code, Diagnostics: fmt.Sprintf(format, args...)}}}
}

// New returns an OperationOutcome with one issue.
func New(severity, code, diagnostics string, expression ...string) fhir.OperationOutcome {
	return FromIssues([]Issue{{Severity: severity, Code: code, Diagnostics: diagnostics, Expression: expression}})
}

// FromIssues returns an OperationOutcome holding issues.
func FromIssues(issues []Issue) fhir.OperationOutcome {
	oo := fhir.OperationOutcome{Issue: make([]fhir.OperationOutcomeIssue, 0, len(issues))}
	for _, is := range issues {
		d := is.Diagnostics
		oo.Issue = append(oo.Issue, fhir.OperationOutcomeIssue{
			Severity:    severity(is.Severity),
			Code:        issueType(is.Code),
			Diagnostics: &d,
			Expression:  is.Expression,
		})
	}
	return oo
}

// severity and issueType map codes through the model's own JSON decoding so
// the set of valid codes is the model's; an unknown code falls back to the
// most generic one rather than emitting an invalid resource.
func severity(s string) fhir.IssueSeverity {
	var v fhir.IssueSeverity
	if err := json.Unmarshal([]byte(`"`+s+`"`), &v); err != nil {
		return fhir.IssueSeverityError
	}
	return v
}

func issueType(s string) fhir.IssueType {
	var v fhir.IssueType
	if err := json.Unmarshal([]byte(`"`+s+`"`), &v); err != nil {
		return fhir.IssueTypeProcessing
	}
	return v
}

// Write sends oo with status as application/fhir+json.
func Write(w http.ResponseWriter, status int, oo fhir.OperationOutcome) {
	b, err := json.Marshal(oo)
	if err != nil {
		// Marshalling a model we built ourselves cannot fail; keep the
		// contract of always answering with a body anyway.
		b = []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Error writes a one-issue error OperationOutcome.
func Error(w http.ResponseWriter, status int, code, diagnostics string, expression ...string) {
	Write(w, status, New("error", code, diagnostics, expression...))
}

// WriteError renders err: an *HTTPError keeps its status and issues; anything
// else becomes a 500 that says nothing about internals.
func WriteError(w http.ResponseWriter, err error) {
	var e *HTTPError
	if errors.As(err, &e) {
		Write(w, e.Status, FromIssues(e.Issues))
		return
	}
	Error(w, http.StatusInternalServerError, "exception", "internal error")
}
