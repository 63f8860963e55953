// Package bulkapi is the HTTP face of Bulk Data $export: kick-off at the
// system, Patient and Group levels, status polling, cancellation and file
// download, following the FHIR asynchronous request pattern. The work is
// done by bulk/export jobs run by a bulk/job.Manager.
package bulkapi

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/equitas/equitas/bulk/export"
	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/store"
)

// Handler serves the export endpoints.
type Handler struct {
	st   store.Store
	jobs *job.Manager
	// base returns the absolute FHIR base URL of a request, e.g.
	// http://127.0.0.1:8080/fhir.
	base func(*http.Request) string
	// RequiresAccessToken is true when the server runs SMART auth: status
	// and files then need the token of the client that started the job.
	RequiresAccessToken bool
	maxBody             int64
}

// New returns the export endpoints over jobs, which must have the export
// runner registered under export.Kind. base gives the absolute FHIR base
// URL of a request (rest.Server.Base).
func New(st store.Store, jobs *job.Manager, base func(*http.Request) string, requiresToken bool) *Handler {
	return &Handler{st: st, jobs: jobs, base: func(r *http.Request) string { return strings.TrimRight(base(r), "/") },
		RequiresAccessToken: requiresToken, maxBody: 1 << 20}
}

// Routes mounts the status endpoints under the FHIR base router (kick-off
// handlers are registered as operations; files are served by File, which
// must be mounted outside the FHIR router's content negotiation because
// clients ask for application/fhir+ndjson).
func (h *Handler) Routes(r chi.Router) {
	r.Get("/bulkstatus/{job}", h.Status)
	r.Delete("/bulkstatus/{job}", h.Cancel)
}

// Operation definitions of Bulk Data 2.0.0 (named "export" at every
// level, as corrected by FHIR-34235).
const (
	SystemExportDefinition  = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
	PatientExportDefinition = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
	GroupExportDefinition   = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
	// BulkDataCapabilityStatement is what the server instantiates.
	BulkDataCapabilityStatement = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
)

// Mount registers the kick-off operations at the three levels, the status
// routes under the FHIR base and the file route at the root of srv. auth
// authenticates file downloads as the FHIR routes are authenticated (nil
// serves them as access.Anonymous(), for servers without auth).
func (h *Handler) Mount(srv *rest.Server, auth func(http.Handler) http.Handler) {
	srv.Operation(rest.Operation{Name: "export", Level: rest.System, Definition: SystemExportDefinition, Handler: h.Kickoff(export.System)})
	srv.Operation(rest.Operation{Name: "export", Level: rest.Type, Types: []string{"Patient"}, Definition: PatientExportDefinition, Handler: h.Kickoff(export.Patient)})
	srv.Operation(rest.Operation{Name: "export", Level: rest.Instance, Types: []string{"Group"}, Definition: GroupExportDefinition, Handler: h.Kickoff(export.Group)})
	srv.Instantiate(BulkDataCapabilityStatement)
	h.Routes(srv.FHIR())
	if auth == nil {
		auth = func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), access.Anonymous())))
			})
		}
	}
	srv.Router().With(auth).Get(FilePath, h.File)
}

// FilePath is the route pattern of File below the server root.
const FilePath = "/fhir/bulkfiles/{job}/{file}"

// Kickoff returns the handler of $export at one level. For Group level
// the group id is the chi URL parameter "id".
func (h *Handler) Kickoff(level export.Level) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.kickoff(w, r, level, export.Parse)
	}
}

// DaVinciExport returns the handler of Group/[id]/$davinci-data-export
// (Da Vinci ATR 2.1.0): a Group-level export whose parameters are checked
// by export.ParseDaVinci, through the same async pattern, status and files.
func (h *Handler) DaVinciExport() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.kickoff(w, r, export.Group, export.ParseDaVinci)
	}
}

func (h *Handler) kickoff(w http.ResponseWriter, r *http.Request, level export.Level, parse func(export.Kickoff) (*export.Params, error)) {
	principal := access.FromContext(r.Context())
	if principal == nil {
		outcome.Error(w, http.StatusUnauthorized, "login", "authentication required")
		return
	}
	prefer := parsePrefer(r.Header.Values("Prefer"))
	if a := r.Header.Get("Accept"); a != "" && !acceptsFHIRJSON(a) {
		outcome.Error(w, http.StatusNotAcceptable, "not-supported", "Accept must be application/fhir+json")
		return
	}
	k := export.Kickoff{Level: level, Lenient: prefer["handling"] == "lenient", IsPOST: r.Method == http.MethodPost}
	if level == export.Group {
		k.GroupID = chi.URLParam(r, "id")
	}
	if r.Method == http.MethodPost {
		body, ok := readBody(w, r, h.maxBody, "kick-off body too large")
		if !ok {
			return
		}
		var err error
		if k.Values, err = export.ParametersBody(body); err != nil {
			outcome.Error(w, http.StatusBadRequest, "invalid", err.Error())
			return
		}
		for n, vs := range r.URL.Query() {
			for _, v := range vs {
				k.Values.Add(n, v)
			}
		}
	} else {
		k.Values = r.URL.Query()
	}
	delete(k.Values, "_format")
	p, err := parse(k)
	var pe *export.ParamError
	if errors.As(err, &pe) {
		outcome.Error(w, http.StatusBadRequest, "not-supported", pe.Error())
		return
	}
	if err != nil {
		outcome.Error(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	h.submit(w, r, principal, p)
}

// submit applies the export policy (export.Authorize) to a parsed
// kick-off and starts the job.
func (h *Handler) submit(w http.ResponseWriter, r *http.Request, principal *access.Principal, p *export.Params) {
	var denied *export.Denied
	switch err := export.Authorize(r.Context(), h.st, principal, p); {
	case errors.As(err, &denied) && denied.NotFound:
		outcome.Error(w, http.StatusNotFound, "not-found", denied.Reason)
		return
	case errors.As(err, &denied):
		outcome.Error(w, http.StatusForbidden, "forbidden", denied.Reason)
		return
	case err != nil:
		outcome.Error(w, http.StatusServiceUnavailable, "transient", "could not check the export request; retry")
		return
	}
	p.ClientID, p.Scopes, p.Organization = principal.ClientID, principal.Scopes, principal.Organization
	p.RequiresAccessToken = p.RequiresAccessToken || h.RequiresAccessToken
	request := h.absolute(r)
	p.FileBase = h.base(r) + "/bulkfiles"
	rec, err := h.jobs.Submit(r.Context(), export.Kind, principal.ClientID, request, p)
	if errors.Is(err, job.ErrTooManyJobs) {
		w.Header().Set("Retry-After", "60")
		outcome.Error(w, http.StatusTooManyRequests, "throttled", "an export started by this client is still in progress")
		return
	}
	if err != nil {
		outcome.Error(w, http.StatusInternalServerError, "exception", "could not start the export")
		return
	}
	w.Header().Set("Content-Location", h.base(r)+"/bulkstatus/"+rec.ID)
	outcome.Write(w, http.StatusAccepted, outcome.New("information", "informational", "export accepted"))
}

func (h *Handler) absolute(r *http.Request) string {
	// The manifest's request is the kick-off URL; r.URL.Path already
	// contains the /fhir prefix the base ends with.
	base := h.base(r)
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

// owned returns the job if the caller may see it; other clients' jobs are
// reported as not found. Every job kind ($export, $import) shares the
// status, cancel and file endpoints.
func (h *Handler) owned(w http.ResponseWriter, r *http.Request) (*job.Record, bool) {
	principal := access.FromContext(r.Context())
	rec, err := h.jobs.Get(r.Context(), chi.URLParam(r, "job"))
	if errors.Is(err, job.ErrNotFound) || (err == nil && (principal == nil || (h.RequiresAccessToken && rec.Owner != principal.ClientID))) {
		outcome.Error(w, http.StatusNotFound, "not-found", "no such bulk job (it may have been cancelled or expired)")
		return nil, false
	}
	if err != nil {
		outcome.Error(w, http.StatusServiceUnavailable, "transient", "could not read the job status; retry")
		return nil, false
	}
	return rec, true
}

// Status answers a poll of the status URL.
func (h *Handler) Status(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.owned(w, r); !ok {
		return
	}
	rec, err := h.jobs.Poll(r.Context(), chi.URLParam(r, "job"))
	retry := strconv.Itoa(max(1, int(h.jobs.MinPoll().Seconds())))
	switch {
	case errors.Is(err, job.ErrPollTooSoon):
		w.Header().Set("Retry-After", retry)
		outcome.Error(w, http.StatusTooManyRequests, "throttled", "polled too frequently; wait Retry-After seconds")
		return
	case err != nil:
		outcome.Error(w, http.StatusServiceUnavailable, "transient", "could not read the job status; retry")
		return
	}
	switch rec.State {
	case job.Completed:
		w.Header().Set("Expires", rec.ExpiresAt.UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(rec.Result)
	case job.Failed:
		outcome.Error(w, http.StatusInternalServerError, "exception", rec.Kind+" failed: "+rec.Error)
	default:
		w.Header().Set("Retry-After", retry)
		p := rec.Progress
		if p == "" {
			p = string(rec.State)
		}
		w.Header().Set("X-Progress", p)
		w.WriteHeader(http.StatusAccepted)
	}
}

// Cancel deletes a job: 202, then status polls answer 404.
func (h *Handler) Cancel(w http.ResponseWriter, r *http.Request) {
	rec, ok := h.owned(w, r)
	if !ok {
		return
	}
	if err := h.jobs.Cancel(r.Context(), rec.ID); err != nil && !errors.Is(err, job.ErrNotFound) {
		outcome.Error(w, http.StatusInternalServerError, "exception", "could not cancel the job")
		return
	}
	outcome.Write(w, http.StatusAccepted, outcome.New("information", "informational", "export job deleted"))
}

var fileName = regexp.MustCompile(`^[A-Za-z-]+-[0-9]+\.ndjson$`)

// File streams one output file.
func (h *Handler) File(w http.ResponseWriter, r *http.Request) {
	rec, ok := h.owned(w, r)
	if !ok {
		return
	}
	name := chi.URLParam(r, "file")
	if rec.State != job.Completed || !fileName.MatchString(name) {
		outcome.Error(w, http.StatusNotFound, "not-found", "no such file")
		return
	}
	// Resource files need a read scope for their type on the token that
	// fetches them (it may be narrower than the kick-off's); error,
	// deleted and outcome files are the job's own report.
	if typ := fileType(name); typ != "OperationOutcome" && typ != "Bundle" && !access.FromContext(r.Context()).Allows(typ, access.Read) {
		outcome.Error(w, http.StatusForbidden, "forbidden", "scope does not allow reading "+typ)
		return
	}
	f, err := os.Open(filepath.Join(h.jobs.Dir(rec.ID), name))
	if err != nil {
		outcome.Error(w, http.StatusNotFound, "not-found", "no such file (it may have expired)")
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/fhir+ndjson")
	w.Header().Set("Expires", rec.ExpiresAt.UTC().Format(http.TimeFormat))
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Vary", "Accept-Encoding")
		gz := gzip.NewWriter(w)
		_, _ = io.Copy(gz, f)
		_ = gz.Close()
		return
	}
	if st, err := f.Stat(); err == nil {
		w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		w.Header().Set("Last-Modified", st.ModTime().UTC().Format(http.TimeFormat))
	}
	_, _ = io.Copy(w, f)
}

// readBody reads a request body of at most limit bytes, answering 413
// with tooLarge when it is longer and 400 when it cannot be read (a
// client that stopped sending).
func readBody(w http.ResponseWriter, r *http.Request, limit int64, tooLarge string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		outcome.Error(w, http.StatusRequestEntityTooLarge, "too-costly", tooLarge)
		return nil, false
	case err != nil:
		outcome.Error(w, http.StatusBadRequest, "incomplete", "the request body could not be read")
		return nil, false
	}
	return body, true
}

func parsePrefer(values []string) map[string]string {
	out := map[string]string{}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			out[strings.ToLower(k)] = strings.Trim(val, `"`)
		}
	}
	return out
}

func acceptsFHIRJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch mt {
		case "application/fhir+json", "application/json", "application/json+fhir", "*/*", "application/*":
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header admits gzip
// (a q=0 weight refuses it).
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// fileType is the resource type of a job file named [prefix-]Type-N.ndjson.
func fileType(name string) string {
	name = strings.TrimPrefix(strings.TrimPrefix(name, "error-"), "deleted-")
	typ, _, _ := strings.Cut(name, "-")
	return typ
}
