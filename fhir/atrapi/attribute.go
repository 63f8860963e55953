package atrapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/fhir/outcome"
)

// attribute kicks off Group/$attribute: an attribution run in the
// background, answered 202 with the status URL in Content-Location (the
// FHIR asynchronous request pattern Bulk Data uses).
func (a *API) attribute(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		outcome.Error(w, http.StatusMethodNotAllowed, "not-supported", "use POST")
		return
	}
	who := access.FromContext(r.Context())
	switch {
	case who == nil:
		outcome.Error(w, http.StatusUnauthorized, "login", "authentication required")
		return
	case !who.Allows("Group", access.Create) || !who.Allows("Group", access.Update):
		outcome.Error(w, http.StatusForbidden, "forbidden", "scope does not allow writing Group")
		return
	case who.Organization != "" || who.Restricted():
		outcome.Error(w, http.StatusForbidden, "forbidden", "attribution lists are computed by the payer, not by a provider organization")
		return
	}
	p, err := readParams(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	opts, err := runOptions(p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	opts.Audit = attribution.Audit{Who: who.ClientID, Why: p.get("reason").Get("valueString").String()}
	opts.Logger = a.log
	job, err := a.jobs.Start(r.Context(), opts)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Location", a.base(r)+jobsPathFragment+job.ID)
	outcome.Write(w, http.StatusAccepted, outcome.New("information", "informational", "attribution run "+job.ID+" accepted; poll Content-Location for its result"))
}

// runOptions reads the $attribute parameters: method (prospective,
// retrospective or hybrid; default hybrid), asOf (date; default today),
// period (the contract validity period), contract (limit to one list),
// status (draft, open or final), mostRecent (boolean).
func runOptions(p params) (attribution.RunOptions, error) {
	var o attribution.RunOptions
	method := string(attribution.Hybrid)
	if m := p.get("method"); m.Exists() {
		method = first(m, "valueCode", "valueString")
	}
	var err error
	if o.Method, err = attribution.ParseMethod(method); err != nil {
		return o, bad("method must be prospective, retrospective or hybrid, not %q", method)
	}
	o.AsOf = time.Now().UTC().Truncate(24 * time.Hour)
	for _, name := range []string{"asOf", "as-of", "asOfDate"} {
		if e := p.get(name); e.Exists() {
			d := first(e, "valueDate", "valueDateTime", "valueString")
			if o.AsOf, err = time.Parse(time.DateOnly, d[:min(len(d), 10)]); err != nil {
				return o, bad("%s must be a date (YYYY-MM-DD), not %q", name, d)
			}
			break
		}
	}
	if e := p.get("period"); e.Exists() {
		for _, b := range []struct {
			path string
			dst  *time.Time
		}{{"valuePeriod.start", &o.ContractStart}, {"valuePeriod.end", &o.ContractEnd}} {
			if d := e.Get(b.path).String(); d != "" {
				if *b.dst, err = time.Parse(time.DateOnly, d[:min(len(d), 10)]); err != nil {
					return o, bad("period: %q is not a date", d)
				}
			}
		}
		if !o.ContractStart.IsZero() && !o.ContractEnd.IsZero() && o.ContractEnd.Before(o.ContractStart) {
			return o, bad("period ends before it starts")
		}
	}
	if e := p.get("contract"); e.Exists() {
		o.Contract = first(e, "valueString", "valueIdentifier.value", "valueCode")
		if o.Contract == "" {
			return o, bad("contract must be a string or an Identifier with a value")
		}
	}
	if e := p.get("status"); e.Exists() {
		switch o.Status = first(e, "valueCode", "valueString"); o.Status {
		case attribution.StatusDraft, attribution.StatusOpen, attribution.StatusFinal:
		default:
			return o, bad("status must be draft, open or final, not %q", o.Status)
		}
	}
	o.MostRecent = p.get("mostRecent").Get("valueBoolean").Bool()
	return o, nil
}

func first(e gjson.Result, paths ...string) string {
	for _, path := range paths {
		if v := e.Get(path).String(); v != "" {
			return v
		}
	}
	return ""
}

// jobStatus answers a status poll: 202 with X-Progress while running, 200
// with the result Parameters when done, an OperationOutcome on failure.
func (a *API) jobStatus(w http.ResponseWriter, r *http.Request) {
	if !a.jobCaller(w, r) {
		return
	}
	j, err := a.jobs.Get(r.Context(), chi.URLParam(r, "job"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	switch j.Status {
	case attribution.JobRunning:
		w.Header().Set("X-Progress", "attributing as of "+j.AsOf)
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusAccepted)
	case attribution.JobComplete:
		w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(resultParameters(j))
	case attribution.JobCancelled:
		outcome.Error(w, http.StatusNotFound, "not-found", "attribution run "+j.ID+" was cancelled")
	default:
		outcome.Error(w, http.StatusInternalServerError, "exception", "attribution run "+j.ID+" failed: "+j.Error)
	}
}

// jobCancel cancels a running job or forgets a finished one (202).
func (a *API) jobCancel(w http.ResponseWriter, r *http.Request) {
	if !a.jobCaller(w, r) {
		return
	}
	if err := a.jobs.Cancel(r.Context(), chi.URLParam(r, "job")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (a *API) jobCaller(w http.ResponseWriter, r *http.Request) bool {
	who := access.FromContext(r.Context())
	switch {
	case who == nil:
		outcome.Error(w, http.StatusUnauthorized, "login", "authentication required")
	case who.Organization != "" || who.Restricted() || !who.Allows("Group", access.Read):
		outcome.Error(w, http.StatusForbidden, "forbidden", "not allowed to see attribution runs")
	default:
		return true
	}
	return false
}

type jsonObj = map[string]any

// resultParameters is the outcome of a finished run: the counts and one
// part per Group version written.
func resultParameters(j *attribution.Job) jsonObj {
	res := j.Result
	ps := []jsonObj{
		{"name": "method", "valueCode": string(j.Method)},
		{"name": "asOf", "valueDate": j.AsOf},
		{"name": "patients", "valueInteger": res.Patients},
		{"name": "attributed", "valueInteger": res.Attributed},
	}
	for _, c := range []string{attribution.ChangeNew, attribution.ChangeChanged, attribution.ChangeNoChange, attribution.ChangeDropped} {
		ps = append(ps, jsonObj{"name": "changes", "part": []jsonObj{
			{"name": "changeType", "valueCode": c}, {"name": "count", "valueInteger": res.Changes[c]}}})
	}
	for _, g := range res.Groups {
		ps = append(ps, jsonObj{"name": "group", "part": []jsonObj{
			{"name": "reference", "valueReference": jsonObj{"reference": "Group/" + g.ID + "/_history/" + strconv.FormatUint(g.Version, 10)}},
			{"name": "active", "valueInteger": g.Active},
			{"name": "inactive", "valueInteger": g.Inactive},
			{"name": "provenance", "valueReference": jsonObj{"reference": "Provenance/" + g.Provenance}},
		}})
	}
	return jsonObj{"resourceType": "Parameters", "parameter": ps}
}
