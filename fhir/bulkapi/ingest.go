package bulkapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/equitas/equitas/bulk/importjob"
	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/resourcetype"
	"github.com/equitas/equitas/fhir/rest"
)

// Operation definitions of the ingest operations.
const (
	ImportDefinition           = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/import"
	BulkSubmitDefinition       = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/bulk-submit"
	BulkSubmitStatusDefinition = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/bulk-submit-status"
	// BulkSubmitScope authorizes $bulk-submit; it lets the submitted data
	// be written whatever its types.
	BulkSubmitScope = "system/bulk-submit"
)

// Ingest serves $import (ping and pull), $bulk-submit and
// $bulk-submit-status. Import jobs are polled, cancelled and their
// outcome files downloaded through the export Handler's status and file
// endpoints, which serve every job kind.
type Ingest struct {
	jobs          *job.Manager
	subs          *importjob.Submissions
	base          func(*http.Request) string
	requiresToken bool
	retryAfter    string
}

// NewIngest returns the ingest endpoints over jobs (with importjob.Kind
// registered) and subs.
func NewIngest(jobs *job.Manager, subs *importjob.Submissions, base func(*http.Request) string, requiresToken bool) *Ingest {
	return &Ingest{jobs: jobs, subs: subs, requiresToken: requiresToken,
		base:       func(r *http.Request) string { return strings.TrimRight(base(r), "/") },
		retryAfter: strconv.Itoa(max(1, int(jobs.MinPoll().Seconds())))}
}

// Mount registers the operations and the submission status route on srv.
func (g *Ingest) Mount(srv *rest.Server) {
	srv.Operation(rest.Operation{Name: "import", Level: rest.System, Definition: ImportDefinition, Handler: http.HandlerFunc(g.Import)})
	srv.Operation(rest.Operation{Name: "bulk-submit", Level: rest.System, Definition: BulkSubmitDefinition, Handler: http.HandlerFunc(g.BulkSubmit)})
	srv.Operation(rest.Operation{Name: "bulk-submit-status", Level: rest.System, Definition: BulkSubmitStatusDefinition, Handler: http.HandlerFunc(g.BulkSubmitStatus)})
	srv.FHIR().Get("/bulksubmit/{key}", g.SubmissionStatus)
}

// exportParams are passed from an $import request to the source export.
var exportParams = map[string]bool{"_type": true, "_since": true, "_typeFilter": true, "_elements": true,
	"includeAssociatedData": true, "_outputFormat": true, "patient": true}

// Import starts a ping-and-pull import: POST with a Parameters body
// holding exportUrl, optionally exportType (dynamic|static) and export
// parameters for a dynamic export.
func (g *Ingest) Import(w http.ResponseWriter, r *http.Request) {
	p := access.FromContext(r.Context())
	if !post(w, r) {
		return
	}
	if !canWrite(p) {
		outcome.Error(w, http.StatusForbidden, "forbidden", "$import needs a scope that allows writing resources")
		return
	}
	if p.Restricted() {
		outcome.Error(w, http.StatusForbidden, "forbidden", restrictedIngest)
		return
	}
	params, ok := readParameters(w, r)
	if !ok {
		return
	}
	ip := &importjob.Params{ExportType: importjob.Dynamic, ExportParams: url.Values{}, ClientID: p.ClientID, Scopes: p.Scopes,
		FileBase: g.base(r) + "/bulkfiles", RequiresAccessToken: g.requiresToken}
	for _, prm := range params {
		switch {
		case prm.Name == "exportUrl":
			ip.ExportURL, _ = prm.str()
		case prm.Name == "exportType":
			ip.ExportType, _ = prm.str()
		case exportParams[prm.Name]:
			if v, ok := prm.str(); ok {
				ip.ExportParams.Add(prm.Name, v)
			}
		default:
			outcome.Error(w, http.StatusBadRequest, "not-supported", "unsupported $import parameter "+prm.Name)
			return
		}
	}
	if err := checkURL(ip.ExportURL); err != nil {
		outcome.Error(w, http.StatusBadRequest, "required", "exportUrl: "+err.Error())
		return
	}
	if ip.ExportType != importjob.Dynamic && ip.ExportType != importjob.Static {
		outcome.Error(w, http.StatusBadRequest, "invalid", "exportType must be dynamic or static")
		return
	}
	rec, err := g.jobs.Submit(r.Context(), importjob.Kind, p.ClientID, g.base(r)+"/$import", ip)
	if g.submitFailed(w, err) {
		return
	}
	w.Header().Set("Content-Location", g.base(r)+"/bulkstatus/"+rec.ID)
	outcome.Write(w, http.StatusAccepted, outcome.New("information", "informational", "import accepted"))
}

func (g *Ingest) submitFailed(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, job.ErrTooManyJobs):
		w.Header().Set("Retry-After", "60")
		outcome.Error(w, http.StatusTooManyRequests, "throttled", "too many bulk jobs of this client are in progress")
	case errors.Is(err, importjob.ErrBadSubmission):
		outcome.Error(w, http.StatusBadRequest, "invalid", err.Error())
	case errors.Is(err, importjob.ErrSubmissionClosed):
		outcome.Error(w, http.StatusConflict, "conflict", "the submission is already completed or stopped")
	default:
		outcome.Error(w, http.StatusInternalServerError, "exception", "the request could not be carried out; retry later")
	}
	return true
}

// BulkSubmit serves $bulk-submit (Bulk Data 4.0.0-ballot): 200 once the
// request is recorded; loading runs asynchronously.
func (g *Ingest) BulkSubmit(w http.ResponseWriter, r *http.Request) {
	p := access.FromContext(r.Context())
	if !post(w, r) {
		return
	}
	scopes, ok := submitScopes(p)
	if !ok {
		outcome.Error(w, http.StatusForbidden, "forbidden", "$bulk-submit needs the "+BulkSubmitScope+" scope or a write scope")
		return
	}
	if p.Restricted() {
		outcome.Error(w, http.StatusForbidden, "forbidden", restrictedIngest)
		return
	}
	params, ok := readParameters(w, r)
	if !ok {
		return
	}
	req := importjob.SubmitRequest{Request: g.base(r) + "/$bulk-submit", Headers: map[string]string{}}
	for _, prm := range params {
		var ok bool
		switch prm.Name {
		case "submitter":
			req.Submitter, ok = prm.identifier()
		case "submissionId":
			req.SubmissionID, ok = prm.str()
		case "submissionStatus":
			req.Status, ok = prm.code()
		case "manifestUrl":
			req.ManifestURL, ok = prm.str()
		case "replacesManifestUrl":
			req.ReplacesManifestURL, ok = prm.str()
		case "fhirBaseUrl":
			req.FHIRBaseURL, ok = prm.str()
		case "outputFormat":
			var f string
			f, ok = prm.str()
			if mt, _, _ := strings.Cut(f, ";"); ok && mt != "application/fhir+ndjson" && mt != "application/ndjson" && mt != "ndjson" {
				outcome.Error(w, http.StatusBadRequest, "not-supported", "outputFormat "+f+" is not supported")
				return
			}
		case "fileRequestHeader":
			name, _ := prm.part("headerName")
			value, _ := prm.part("headerValue")
			ok = name != "" && value != ""
			req.Headers[name] = value
		case "metadata", "import":
			ok = true // IG-specific options: none are defined for this server
		default:
			outcome.Error(w, http.StatusBadRequest, "not-supported", "unsupported $bulk-submit parameter "+prm.Name)
			return
		}
		if !ok {
			outcome.Error(w, http.StatusBadRequest, "invalid", "parameter "+prm.Name+" has no usable value")
			return
		}
	}
	if req.ManifestURL != "" {
		if err := checkURL(req.ManifestURL); err != nil {
			outcome.Error(w, http.StatusBadRequest, "invalid", "manifestUrl: "+err.Error())
			return
		}
	}
	sub, err := g.subs.Submit(r.Context(), p.ClientID, scopes, g.base(r)+"/bulkfiles", req)
	if g.submitFailed(w, err) {
		return
	}
	outcome.Write(w, http.StatusOK, outcome.New("information", "informational",
		fmt.Sprintf("submission %s is %s with %d manifest(s)", sub.SubmissionID, sub.Status, len(sub.Manifests))))
}

// BulkSubmitStatus serves $bulk-submit-status: 202 with the status URL of
// the submission.
func (g *Ingest) BulkSubmitStatus(w http.ResponseWriter, r *http.Request) {
	p := access.FromContext(r.Context())
	if !post(w, r) {
		return
	}
	if _, ok := submitScopes(p); !ok {
		outcome.Error(w, http.StatusForbidden, "forbidden", "$bulk-submit-status needs the "+BulkSubmitScope+" scope or a write scope")
		return
	}
	params, ok := readParameters(w, r)
	if !ok {
		return
	}
	var submitter, id string
	for _, prm := range params {
		switch prm.Name {
		case "submitter":
			submitter, _ = prm.identifier()
		case "submissionId":
			id, _ = prm.str()
		case "_outputFormat":
		default:
			outcome.Error(w, http.StatusBadRequest, "not-supported", "unsupported $bulk-submit-status parameter "+prm.Name)
			return
		}
	}
	if submitter == "" || id == "" {
		outcome.Error(w, http.StatusBadRequest, "required", "submitter and submissionId are required")
		return
	}
	key := importjob.Key(submitter, id)
	if _, err := g.subs.Get(r.Context(), p.ClientID, key); err != nil {
		outcome.Error(w, http.StatusNotFound, "not-found", "no such submission")
		return
	}
	w.Header().Set("Content-Location", g.base(r)+"/bulksubmit/"+key)
	outcome.Write(w, http.StatusAccepted, outcome.New("information", "informational", "poll the Content-Location for the submission status"))
}

// SubmissionStatus answers a poll of a submission's status URL.
func (g *Ingest) SubmissionStatus(w http.ResponseWriter, r *http.Request) {
	p := access.FromContext(r.Context())
	done, progress, m, err := g.subs.Status(r.Context(), p.ClientID, chi.URLParam(r, "key"), g.requiresToken)
	switch {
	case errors.Is(err, importjob.ErrSubmissionNotFound):
		outcome.Error(w, http.StatusNotFound, "not-found", "no such submission")
		return
	case err != nil:
		outcome.Error(w, http.StatusServiceUnavailable, "transient", "could not read the submission status; retry")
		return
	}
	if !done {
		w.Header().Set("Retry-After", g.retryAfter)
		w.Header().Set("X-Progress", progress)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(m)
}

func post(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		outcome.Error(w, http.StatusMethodNotAllowed, "not-supported", "use POST with a Parameters body")
		return false
	}
	return true
}

// restrictedIngest is why organization-bound clients may not ingest: bulk
// loads write without a per-resource check of whose patients they touch.
const restrictedIngest = "bulk ingest is not available to organization-bound clients (they may write only their attributed patients' resources, one by one)"

// canWrite reports whether the client may create or update some type.
func canWrite(p *access.Principal) bool {
	if p.Allows("*", access.Create) {
		return true
	}
	for _, t := range resourcetype.All() {
		if p.Allows(t, access.Create) || p.Allows(t, access.Update) {
			return true
		}
	}
	return false
}

// submitScopes returns the scopes a submission's data is written with:
// system/bulk-submit lets a submitter write any type.
func submitScopes(p *access.Principal) ([]string, bool) {
	for _, s := range p.Scopes {
		if s == BulkSubmitScope {
			return append(append([]string(nil), p.Scopes...), "system/*.cu"), true
		}
	}
	return p.Scopes, canWrite(p)
}

func checkURL(raw string) error {
	if raw == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return nil
}

// parameter is one Parameters.parameter with its value[x] and parts.
type parameter struct {
	Name  string                     `json:"name"`
	Part  []parameter                `json:"part"`
	raw   map[string]json.RawMessage // value[x] members
	value string                     // which value[x]
}

func (p *parameter) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	type plain parameter
	var pl plain
	if err := json.Unmarshal(b, &pl); err != nil {
		return err
	}
	*p = parameter(pl)
	p.raw = map[string]json.RawMessage{}
	for k, v := range m {
		if strings.HasPrefix(k, "value") {
			p.raw[k], p.value = v, k
		}
	}
	return nil
}

// str returns a string-like value (string, url, uri, code, canonical, id,
// instant, dateTime).
func (p parameter) str() (string, bool) {
	raw, ok := p.raw[p.value]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil || s == "" {
		return "", false
	}
	return s, true
}

// identifier returns a valueIdentifier as system|value.
func (p parameter) identifier() (string, bool) {
	var id struct{ System, Value string }
	if raw, ok := p.raw["valueIdentifier"]; !ok || json.Unmarshal(raw, &id) != nil || id.Value == "" {
		return "", false
	}
	return id.System + "|" + id.Value, true
}

// code returns a valueCoding's or valueCode's code.
func (p parameter) code() (string, bool) {
	if raw, ok := p.raw["valueCoding"]; ok {
		var c struct{ Code string }
		if json.Unmarshal(raw, &c) != nil || c.Code == "" {
			return "", false
		}
		return c.Code, true
	}
	return p.str()
}

func (p parameter) part(name string) (string, bool) {
	for _, pt := range p.Part {
		if pt.Name == name {
			return pt.str()
		}
	}
	return "", false
}

// readParameters reads a Parameters body.
func readParameters(w http.ResponseWriter, r *http.Request) ([]parameter, bool) {
	body, ok := readBody(w, r, 1<<20, "body too large")
	if !ok {
		return nil, false
	}
	var params struct {
		ResourceType string      `json:"resourceType"`
		Parameter    []parameter `json:"parameter"`
	}
	if err := json.Unmarshal(body, &params); err != nil || params.ResourceType != "Parameters" {
		outcome.Error(w, http.StatusBadRequest, "invalid", "the body must be a FHIR Parameters resource")
		return nil, false
	}
	for i, prm := range params.Parameter {
		if prm.Name == "" {
			outcome.Error(w, http.StatusBadRequest, "invalid", fmt.Sprintf("parameter[%d] has no name", i))
			return nil, false
		}
	}
	return params.Parameter, true
}
