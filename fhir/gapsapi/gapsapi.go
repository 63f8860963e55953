// Package gapsapi is the HTTP face of DEQM $care-gaps: Measure/$care-gaps
// and Group/[id]/$care-gaps (GET or POST Parameters), answering FHIR
// Parameters with one gaps document Bundle per patient, a provider gap
// list as CSV (Accept: text/csv or _format=text/csv), or, with
// Prefer: respond-async, a bulk/job whose NDJSON output is served by the
// Bulk Data status and file endpoints. The work is done by
// measures/caregaps.
package gapsapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/equitas/equitas/bulk/export"
	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/measures/caregaps"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/measure"
)

// Definition is the canonical of the DEQM 4.0.0 OperationDefinition.
const Definition = "http://hl7.org/fhir/us/davinci-deqm/OperationDefinition/care-gaps"

// Options tune a Handler.
type Options struct {
	// MaxSyncPatients bounds a synchronous request's population; larger
	// ones must use Prefer: respond-async. Default 5000.
	MaxSyncPatients int
	// MaxBody bounds a POSTed Parameters body. Default 1 MiB.
	MaxBody int64
	// SpoolDir holds synchronous responses while they are computed (they
	// hold PHI: keep it beside the data). Default os.TempDir().
	SpoolDir string
	// RequiresAccessToken is true when the server runs SMART auth.
	RequiresAccessToken bool
	Logger              *slog.Logger
}

// Handler serves $care-gaps.
type Handler struct {
	svc  *caregaps.Service
	jobs *job.Manager
	base func(*http.Request) string
	opts Options
	log  *slog.Logger
}

// New returns the handler. jobs must have svc.RunJob registered under
// caregaps.JobKind for asynchronous requests (nil jobs: async is refused).
// base gives the absolute FHIR base URL of a request (rest.Server.Base).
func New(svc *caregaps.Service, jobs *job.Manager, base func(*http.Request) string, opts Options) *Handler {
	if opts.MaxSyncPatients <= 0 {
		opts.MaxSyncPatients = 5000
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{svc: svc, jobs: jobs, base: func(r *http.Request) string { return strings.TrimRight(base(r), "/") }, opts: opts, log: log}
}

// Mount registers Measure/$care-gaps and Group/[id]/$care-gaps as
// operations of srv, answering FHIR JSON or (for provider portals)
// text/csv.
func (h *Handler) Mount(srv *rest.Server) {
	formats := []string{"text/csv"}
	srv.Operation(rest.Operation{Name: "care-gaps", Level: rest.Type, Types: []string{"Measure"}, Definition: Definition, Formats: formats, Handler: http.HandlerFunc(h.Measure)})
	srv.Operation(rest.Operation{Name: "care-gaps", Level: rest.Instance, Types: []string{"Group"}, Definition: Definition, Formats: formats, Handler: http.HandlerFunc(h.Group)})
}

// Measure serves [base]/Measure/$care-gaps.
func (h *Handler) Measure(w http.ResponseWriter, r *http.Request) { h.serve(w, r, "") }

// Group serves [base]/Group/[id]/$care-gaps: the Group is the subject.
func (h *Handler) Group(w http.ResponseWriter, r *http.Request) { h.serve(w, r, chi.URLParam(r, "id")) }

type format int

const (
	formatFHIR format = iota
	formatCSV
)

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, groupID string) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		outcome.Error(w, http.StatusMethodNotAllowed, "not-supported", "$care-gaps accepts GET and POST")
		return
	}
	principal := access.FromContext(r.Context())
	if principal == nil {
		outcome.Error(w, http.StatusUnauthorized, "login", "authentication required")
		return
	}
	if !principal.Allows("Patient", access.Read) || !principal.Allows("Measure", access.Read) {
		outcome.Error(w, http.StatusForbidden, "forbidden", "$care-gaps needs read scopes on Patient data and Measure")
		return
	}
	f, ok := negotiate(w, r)
	if !ok {
		return
	}
	values, ok := h.params(w, r)
	if !ok {
		return
	}
	if groupID != "" {
		if s := values.Get("subject"); s != "" && s != "Group/"+groupID {
			outcome.Error(w, http.StatusBadRequest, "invalid", "subject "+s+" contradicts the Group this operation is invoked on")
			return
		}
		values.Set("subject", "Group/"+groupID)
		if !principal.SeesGroup(groupID) {
			outcome.Error(w, http.StatusNotFound, "not-found", "Group/"+groupID+" not found")
			return
		}
	}
	if lenient(r) {
		// Prefer: handling=lenient ignores parameters the operation does
		// not define instead of refusing them.
		for name := range values {
			if !caregaps.KnownParameter(name) {
				delete(values, name)
			}
		}
	}
	req, err := caregaps.ParseRequest(values)
	if err != nil {
		h.fail(w, err)
		return
	}
	if typ, id, _ := strings.Cut(req.Subject, "/"); typ == "Group" && !principal.SeesGroup(id) {
		outcome.Error(w, http.StatusNotFound, "not-found", req.Subject+" not found")
		return
	}
	var visible func(string) bool
	if principal.Restricted() {
		visible = principal.SeesPatient
	}
	if async(r) {
		h.kickoff(w, r, req, principal, f)
		return
	}
	plan, err := h.svc.Prepare(r.Context(), req, visible)
	if err != nil {
		h.fail(w, err)
		return
	}
	if len(plan.Patients) > h.opts.MaxSyncPatients {
		outcome.Error(w, http.StatusBadRequest, "too-costly", strconv.Itoa(len(plan.Patients))+" patients exceed the synchronous limit of "+
			strconv.Itoa(h.opts.MaxSyncPatients)+"; send Prefer: respond-async")
		return
	}
	h.respond(w, r, plan, f)
}

// respond writes the output to a spool file first, so a failure midway
// is a clean error response rather than a truncated body.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, plan *caregaps.Plan, f format) {
	spool, err := os.CreateTemp(h.opts.SpoolDir, "care-gaps-*")
	if err != nil {
		h.fail(w, err)
		return
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	var sum caregaps.Summary
	ctype := "application/fhir+json; charset=utf-8"
	if f == formatCSV {
		ctype = "text/csv; charset=utf-8"
		sum, err = h.svc.WriteCSV(r.Context(), plan, spool)
	} else {
		sum, err = h.svc.WriteParameters(r.Context(), plan, h.base(r), spool)
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	size, err := spool.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = spool.Seek(0, io.SeekStart)
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	h.log.Info("care-gaps", "patients", sum.Patients, "failed", sum.Failed, "measures", len(plan.Measures), "documents", sum.Documents, "rows", sum.Rows, "open", sum.Open, "closed", sum.Closed)
	w.Header().Set("Content-Type", ctype)
	if f == formatCSV {
		w.Header().Set("Content-Disposition", `attachment; filename="care-gaps.csv"`)
	}
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, spool)
}

func (h *Handler) kickoff(w http.ResponseWriter, r *http.Request, req *caregaps.Request, principal *access.Principal, f format) {
	if h.jobs == nil {
		outcome.Error(w, http.StatusBadRequest, "not-supported", "asynchronous $care-gaps is not enabled on this server")
		return
	}
	if f == formatCSV {
		outcome.Error(w, http.StatusBadRequest, "not-supported", "asynchronous $care-gaps produces NDJSON gaps documents; ask for CSV synchronously")
		return
	}
	// Unknown measures and subjects fail now rather than in the job.
	if _, err := h.svc.SelectMeasures(r.Context(), req); err != nil {
		h.fail(w, err)
		return
	}
	var visible func(string) bool
	if principal.Restricted() {
		visible = principal.SeesPatient
	}
	if req.Subject != "" {
		if _, err := h.svc.Population(r.Context(), req, visible); err != nil {
			h.fail(w, err)
			return
		}
	}
	p := caregaps.JobParams{Request: *req, Base: h.base(r), RequiresAccessToken: h.opts.RequiresAccessToken}
	if principal.Restricted() {
		p.Organization = principal.Organization
	}
	rec, err := h.jobs.Submit(r.Context(), caregaps.JobKind, principal.ClientID, absolute(h.base(r), r), p)
	if errors.Is(err, job.ErrTooManyJobs) {
		w.Header().Set("Retry-After", "60")
		outcome.Error(w, http.StatusTooManyRequests, "throttled", "a $care-gaps run started by this client is still in progress")
		return
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Location", h.base(r)+"/bulkstatus/"+rec.ID)
	outcome.Write(w, http.StatusAccepted, outcome.New("information", "informational", "$care-gaps accepted; poll the Content-Location"))
}

// params reads the query, and for POST the Parameters body as well.
func (h *Handler) params(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	q := r.URL.Query()
	if r.Method != http.MethodPost {
		return q, true
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch strings.ToLower(mt) {
	case "application/fhir+json", "application/json", "application/json+fhir":
	default:
		outcome.Error(w, http.StatusUnsupportedMediaType, "not-supported", "POST a Parameters resource as application/fhir+json")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBody))
	if err != nil {
		outcome.Error(w, http.StatusRequestEntityTooLarge, "too-costly", "request body too large")
		return nil, false
	}
	v, err := export.ParametersBody(body)
	if err != nil {
		outcome.Error(w, http.StatusBadRequest, "invalid", err.Error())
		return nil, false
	}
	for n, vs := range q {
		for _, x := range vs {
			v.Add(n, x)
		}
	}
	return v, true
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	var pe *caregaps.ParamError
	switch {
	case errors.As(err, &pe):
		outcome.Error(w, http.StatusBadRequest, "invalid", pe.Error())
	case errors.Is(err, caregaps.ErrNotFound), errors.Is(err, catalog.ErrNotFound):
		outcome.Error(w, http.StatusNotFound, "not-found", err.Error())
	case errors.Is(err, measure.ErrBadContent):
		// The named measure's content on the server cannot be compiled:
		// say which piece is missing rather than a bare 500.
		outcome.Error(w, http.StatusUnprocessableEntity, "processing", err.Error())
	case errors.Is(err, context.Canceled):
		// The client went away: nobody reads the answer.
	default:
		h.log.Error("care-gaps failed", "error", err)
		outcome.Error(w, http.StatusInternalServerError, "exception", "$care-gaps failed")
	}
}

// negotiate picks FHIR JSON or CSV from _format, else Accept (406 for
// anything else).
func negotiate(w http.ResponseWriter, r *http.Request) (format, bool) {
	if f := r.URL.Query().Get("_format"); f != "" {
		mt, _, err := mime.ParseMediaType(strings.ReplaceAll(f, " ", "+"))
		if err != nil {
			mt = f
		}
		switch strings.ToLower(mt) {
		case "json", "application/json", "application/fhir+json", "application/json+fhir":
			return formatFHIR, true
		case "csv", "text/csv":
			return formatCSV, true
		}
		outcome.Error(w, http.StatusNotAcceptable, "not-supported", "_format "+f+" is not supported; use application/fhir+json or text/csv")
		return 0, false
	}
	accept := r.Header.Get("Accept")
	if accept == "" {
		return formatFHIR, true
	}
	best, bestQ := format(-1), 0.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				q = v
			}
		}
		if q <= 0 {
			continue
		}
		f := format(-1)
		switch strings.ToLower(mt) {
		case "application/fhir+json", "application/json", "application/json+fhir", "*/*", "application/*":
			f = formatFHIR
		case "text/csv", "text/*":
			f = formatCSV
		}
		if f >= 0 && q > bestQ {
			best, bestQ = f, q
		}
	}
	if best < 0 {
		outcome.Error(w, http.StatusNotAcceptable, "not-supported", "Accept "+accept+" is not supported; use application/fhir+json or text/csv")
		return 0, false
	}
	return best, true
}

// async reports whether the Prefer header asks for respond-async (the
// header may hold several comma-separated preferences).
func async(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), "respond-async") {
				return true
			}
		}
	}
	return false
}

// lenient reports whether the Prefer header asks for handling=lenient.
func lenient(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.EqualFold(strings.TrimSpace(k), "handling") && strings.Trim(strings.TrimSpace(val), `"`) == "lenient" {
				return true
			}
		}
	}
	return false
}

// absolute is the kick-off URL (the manifest's request).
func absolute(base string, r *http.Request) string {
	if i := strings.Index(base, "://"); i >= 0 {
		if j := strings.IndexByte(base[i+3:], '/'); j >= 0 {
			base = base[:i+3+j]
		}
	}
	u := base + r.URL.Path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u
}
