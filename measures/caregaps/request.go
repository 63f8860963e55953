package caregaps

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/equitas/equitas/measures/measure"
)

// Request is one $care-gaps invocation (DEQM 4.0.0 parameters).
type Request struct {
	PeriodStart string `json:"periodStart"`
	PeriodEnd   string `json:"periodEnd"`
	// Subject is "Patient/id" or "Group/id"; Practitioner "Practitioner/id";
	// Organization "Organization/id".
	Subject      string `json:"subject,omitempty"`
	Practitioner string `json:"practitioner,omitempty"`
	Organization string `json:"organization,omitempty"`
	// Statuses are the gap statuses to report (1..*).
	Statuses           []measure.GapStatus `json:"status"`
	MeasureIDs         []string            `json:"measureId,omitempty"`
	MeasureIdentifiers []string            `json:"measureIdentifier,omitempty"`
	MeasureURLs        []string            `json:"measureUrl,omitempty"`
	Programs           []string            `json:"program,omitempty"`
	Topics             []string            `json:"topic,omitempty"`

	period measure.Period
}

// ParamError is a request the operation refuses (HTTP 400).
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string {
	if e.Param == "" {
		return e.Reason
	}
	return "parameter " + e.Param + ": " + e.Reason
}

// ErrNotFound wraps references the request makes to things that do not
// exist (a subject, a measure); the HTTP layer answers 404.
var ErrNotFound = errors.New("not found")

// KnownParameter reports whether name is a parameter ParseRequest accepts
// (besides _format and _outputFormat, which the HTTP layer consumes).
func KnownParameter(name string) bool {
	switch name {
	case "periodStart", "periodEnd", "subject", "practitioner", "organization",
		"status", "measureId", "measureIdentifier", "measureUrl", "program", "topic":
		return true
	}
	return false
}

var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// ParseRequest reads the operation's parameters from query values (or a
// POSTed Parameters resource flattened to values) and checks them:
// periodStart and periodEnd are required dates, status is required
// (open-gap, closed-gap, not-applicable; repeatable), and the caller must
// give subject, or organization, or practitioner with organization
// (DEQM Conformance Requirement 1) — any other combination is refused.
// Every failure is a *ParamError.
func ParseRequest(v url.Values) (*Request, error) {
	for name := range v {
		if !KnownParameter(name) && name != "_format" && name != "_outputFormat" {
			return nil, &ParamError{Param: name, Reason: "unknown parameter of $care-gaps"}
		}
	}
	one := func(name string) (string, error) {
		vs := nonEmpty(v[name])
		if len(vs) > 1 {
			return "", &ParamError{Param: name, Reason: "may be given at most once"}
		}
		if len(vs) == 0 {
			return "", nil
		}
		return vs[0], nil
	}
	r := &Request{}
	var err error
	if r.PeriodStart, err = one("periodStart"); err != nil {
		return nil, err
	}
	if r.PeriodEnd, err = one("periodEnd"); err != nil {
		return nil, err
	}
	if r.PeriodStart == "" || r.PeriodEnd == "" {
		return nil, &ParamError{Param: "periodStart/periodEnd", Reason: "both are required (the gaps-through period)"}
	}
	if r.period, err = measure.NewPeriod(r.PeriodStart, r.PeriodEnd); err != nil {
		return nil, &ParamError{Param: "periodStart/periodEnd", Reason: err.Error()}
	}
	if r.Subject, err = one("subject"); err != nil {
		return nil, err
	}
	if r.Practitioner, err = one("practitioner"); err != nil {
		return nil, err
	}
	if r.Organization, err = one("organization"); err != nil {
		return nil, err
	}
	if err := r.checkTargets(); err != nil {
		return nil, err
	}
	for _, s := range splitList(v["status"]) {
		st := measure.GapStatus(s)
		switch st {
		case measure.OpenGap, measure.ClosedGap, measure.NotApplicable:
		case "prospective-gap":
			return nil, &ParamError{Param: "status", Reason: "prospective-gap is a DEQM 5.0.0 status; this server implements DEQM 4.0.0 (open-gap, closed-gap, not-applicable)"}
		default:
			return nil, &ParamError{Param: "status", Reason: fmt.Sprintf("%q is not a gaps-status code (open-gap, closed-gap, not-applicable)", s)}
		}
		if !r.Wants(st) {
			r.Statuses = append(r.Statuses, st)
		}
	}
	if len(r.Statuses) == 0 {
		return nil, &ParamError{Param: "status", Reason: "at least one status is required (open-gap, closed-gap; repeat the parameter for both)"}
	}
	r.MeasureIDs = nonEmpty(v["measureId"])
	for _, id := range r.MeasureIDs {
		if !fhirID.MatchString(id) {
			return nil, &ParamError{Param: "measureId", Reason: fmt.Sprintf("%q is not a resource id", id)}
		}
	}
	r.MeasureIdentifiers = nonEmpty(v["measureIdentifier"])
	r.MeasureURLs = nonEmpty(v["measureUrl"])
	r.Programs = splitList(v["program"])
	r.Topics = splitList(v["topic"])
	return r, nil
}

// checkTargets applies DEQM Conformance Requirement 1 and the reference
// forms.
func (r *Request) checkTargets() error {
	switch {
	case r.Subject != "" && (r.Organization != "" || r.Practitioner != ""):
		return &ParamError{Param: "subject", Reason: "give subject alone, or organization, or practitioner with organization (DEQM $care-gaps Conformance Requirement 1)"}
	case r.Subject == "" && r.Organization == "" && r.Practitioner != "":
		return &ParamError{Param: "practitioner", Reason: "practitioner needs organization (DEQM $care-gaps Conformance Requirement 1)"}
	case r.Subject == "" && r.Organization == "":
		return &ParamError{Param: "subject", Reason: "one of subject, organization, or practitioner with organization is required"}
	}
	if r.Subject != "" {
		typ, id, ok := splitRef(r.Subject)
		if !ok || (typ != "Patient" && typ != "Group") {
			return &ParamError{Param: "subject", Reason: fmt.Sprintf("%q must be a reference Patient/id or Group/id", r.Subject)}
		}
		r.Subject = typ + "/" + id
	}
	if r.Organization != "" {
		typ, id, ok := splitRef(r.Organization)
		if !ok || typ != "Organization" {
			return &ParamError{Param: "organization", Reason: fmt.Sprintf("%q must be a reference Organization/id", r.Organization)}
		}
		r.Organization = typ + "/" + id
	}
	if r.Practitioner != "" {
		typ, id, ok := splitRef(r.Practitioner)
		if !ok || typ != "Practitioner" {
			return &ParamError{Param: "practitioner", Reason: fmt.Sprintf("%q must be a reference Practitioner/id", r.Practitioner)}
		}
		r.Practitioner = typ + "/" + id
	}
	return nil
}

// Period returns the gaps-through period.
func (r *Request) Period() measure.Period { return r.period }

// Check re-derives the parsed fields of a Request decoded from JSON (an
// async job's parameters).
func (r *Request) Check() error {
	p, err := measure.NewPeriod(r.PeriodStart, r.PeriodEnd)
	if err != nil {
		return &ParamError{Param: "periodStart/periodEnd", Reason: err.Error()}
	}
	r.period = p
	return r.checkTargets()
}

// Wants reports whether status s was asked for.
func (r *Request) Wants(s measure.GapStatus) bool {
	for _, x := range r.Statuses {
		if x == s {
			return true
		}
	}
	return false
}

// splitRef splits "Type/id" (a relative reference; an absolute URL's last
// two segments are used).
func splitRef(ref string) (typ, id string, ok bool) {
	parts := strings.Split(strings.TrimRight(ref, "/"), "/")
	if len(parts) < 2 {
		return "", "", false
	}
	typ, id = parts[len(parts)-2], parts[len(parts)-1]
	if len(parts) > 2 && !strings.Contains(ref, "://") {
		return "", "", false
	}
	if typ == "" || !fhirID.MatchString(id) {
		return "", "", false
	}
	return typ, id, true
}

func nonEmpty(vs []string) []string {
	var out []string
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// splitList reads a repeatable token parameter that may also be given
// comma-separated (FHIR search's OR form).
func splitList(vs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range vs {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" && !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}
