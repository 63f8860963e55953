// Package measureapi is the HTTP face of the measures held by the server:
// Measure/$evaluate-measure (synchronous, or the FHIR asynchronous pattern
// through bulk/job for large populations), Measure/$data-requirements and
// Measure/$submit-data. It translates HTTP and FHIR Parameters; the work
// is done by measures/catalog.
package measureapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/report"
	"github.com/equitas/equitas/store"
)

// Operation definitions (R4 core).
const (
	EvaluateMeasureDefinition  = "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure"
	DataRequirementsDefinition = "http://hl7.org/fhir/OperationDefinition/Measure-data-requirements"
	SubmitDataDefinition       = "http://hl7.org/fhir/OperationDefinition/Measure-submit-data"
	// JobKind is the bulk/job kind of asynchronous $evaluate-measure runs.
	JobKind = "evaluate-measure"
)

// Options configure a Handler.
type Options struct {
	Catalog *catalog.Catalog
	Store   store.Store
	// Jobs runs asynchronous evaluations; nil answers every request
	// synchronously. Its status and file endpoints are bulkapi's.
	Jobs *job.Manager
	// Base returns the absolute FHIR base URL of a request.
	Base func(*http.Request) string
	// RequiresAccessToken is reported in async manifests (SMART auth on).
	RequiresAccessToken bool
	// Reporter and ReporterDisplay are the reports' default reporter
	// (the reporter parameter overrides it).
	Reporter, ReporterDisplay string
	// AsyncOver is the population size above which an evaluation runs
	// asynchronously even without Prefer: respond-async (0: never).
	AsyncOver int
	// Workers bounds parallel evaluation per request (0: GOMAXPROCS).
	Workers int
	// MaxBody bounds request bodies (0: 16 MiB).
	MaxBody int64
	// TempDir holds synchronous report files while they are built ("": os.TempDir()).
	TempDir string
	Logger  *slog.Logger
}

// Handler serves the measure operations.
type Handler struct {
	o   Options
	v   *validate.Validator
	log *slog.Logger
}

// New returns the handler; Mount registers it.
func New(o Options) (*Handler, error) {
	if o.MaxBody <= 0 {
		o.MaxBody = 16 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	v, err := validate.New()
	if err != nil {
		return nil, err
	}
	return &Handler{o: o, v: v, log: o.Logger.With("component", "measureapi")}, nil
}

// Mount registers the operations on srv at the Measure type and instance
// levels and, when there is a job manager, the asynchronous runner (call
// before the manager starts).
func (h *Handler) Mount(srv *rest.Server) {
	for _, lv := range []rest.Level{rest.Type, rest.Instance} {
		srv.Operation(rest.Operation{Name: "evaluate-measure", Level: lv, Types: []string{"Measure"}, Definition: EvaluateMeasureDefinition, Handler: http.HandlerFunc(h.Evaluate)})
		srv.Operation(rest.Operation{Name: "data-requirements", Level: lv, Types: []string{"Measure"}, Definition: DataRequirementsDefinition, Handler: http.HandlerFunc(h.DataRequirements)})
		srv.Operation(rest.Operation{Name: "submit-data", Level: lv, Types: []string{"Measure"}, Definition: SubmitDataDefinition, Handler: http.HandlerFunc(h.SubmitData)})
	}
	if h.o.Jobs != nil {
		h.o.Jobs.Register(JobKind, h.runJob)
	}
}

var evaluateParams = map[string]bool{
	"periodStart": true, "periodEnd": true, "measure": true, "reportType": true, "subject": true,
	"practitioner": true, "lastReceivedOn": true,
	// DEQM extras (4.0.0 and 5.0.0 $evaluate), accepted.
	"measureId": true, "measureUrl": true, "measureIdentifier": true, "reporter": true, "program": true, "programCode": true,
}

// principal returns the caller, answering 401/403 itself when it may not
// use the operation.
func principal(w http.ResponseWriter, r *http.Request, typ string, interaction rune) (*access.Principal, bool) {
	p := access.FromContext(r.Context())
	if p == nil {
		outcome.Error(w, http.StatusUnauthorized, "login", "authentication required")
		return nil, false
	}
	if !p.Allows(typ, interaction) {
		outcome.Error(w, http.StatusForbidden, "forbidden", "scope does not allow this operation on "+typ)
		return nil, false
	}
	return p, true
}

// evaluation is a parsed $evaluate-measure request.
type evaluation struct {
	req      catalog.Request
	instance bool
}

func (h *Handler) parseEvaluate(r *http.Request, ps params) (*evaluation, error) {
	// Every $evaluate-measure parameter is 0..1 and a value.
	for name := range ps {
		if _, err := ps.one(name); err != nil {
			return nil, err
		}
	}
	get := func(name string) string {
		v, _ := ps.one(name)
		return v
	}
	ev := &evaluation{}
	start, end := get("periodStart"), get("periodEnd")
	switch {
	case start == "":
		return nil, outcome.Errorf(http.StatusBadRequest, "required", "parameter periodStart is required")
	case end == "":
		return nil, outcome.Errorf(http.StatusBadRequest, "required", "parameter periodEnd is required")
	}
	period, err := measure.NewPeriod(start, end)
	if err != nil {
		return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "periodStart/periodEnd: %v", err)
	}
	ev.req.Period = period
	if ev.req.Measure, err = h.measureRef(r, get); err != nil {
		return nil, err
	}
	ev.instance = instanceID(r) != ""
	ev.req.Subject = get("subject")
	if s := ev.req.Subject; s != "" {
		typ, sid, ok := strings.Cut(s, "/")
		if !ok || (typ != "Patient" && typ != "Group") || sid == "" || strings.Contains(sid, "/") {
			return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "parameter subject=%q must be Patient/[id] or Group/[id]", s)
		}
	}
	ev.req.Practitioner = get("practitioner")
	if p := ev.req.Practitioner; p != "" {
		typ, pid, ok := strings.Cut(p, "/")
		if !ok || typ != "Practitioner" || pid == "" || strings.Contains(pid, "/") {
			return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "parameter practitioner=%q must be Practitioner/[id]", p)
		}
	}
	// R4 codes, plus the MeasureReport.type spellings deqm-test-server takes.
	switch rt := get("reportType"); rt {
	case "":
		ev.req.ReportType = report.TypeSummary
		if ev.req.Subject != "" {
			ev.req.ReportType = report.TypeIndividual
		}
	case "subject", report.TypeIndividual:
		if ev.req.Subject == "" {
			return nil, outcome.Errorf(http.StatusBadRequest, "required", "reportType=%s needs a subject", rt)
		}
		ev.req.ReportType = report.TypeIndividual
	case "subject-list":
		ev.req.ReportType = report.TypeSubjectList
	case "population", report.TypeSummary:
		ev.req.ReportType = report.TypeSummary
	default:
		return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "parameter reportType=%q: want subject, subject-list or population", rt)
	}
	// lastReceivedOn only narrows what a client needs re-sent; every
	// evaluation here is complete, so it is checked and otherwise unused.
	if v := get("lastReceivedOn"); v != "" && !validDateTime(v) {
		return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "parameter lastReceivedOn=%q is not a FHIR dateTime", v)
	}
	ev.req.Reporter, ev.req.ReporterDisplay = h.o.Reporter, h.o.ReporterDisplay
	if v := get("reporter"); v != "" {
		typ, rid, ok := strings.Cut(v, "/")
		if !ok || (typ != "Organization" && typ != "Practitioner" && typ != "PractitionerRole" && typ != "Group") || rid == "" || strings.Contains(rid, "/") {
			return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "parameter reporter=%q must be Organization/[id], Practitioner/[id], PractitionerRole/[id] or Group/[id]", v)
		}
		ev.req.Reporter, ev.req.ReporterDisplay = v, ""
	}
	// program and programCode select measures in DEQM; with the measure
	// named they only describe it, so they are accepted and not used.
	ev.req.Workers = h.o.Workers
	return ev, nil
}

// measureRef returns the measure a request names: the URL's id at the
// instance level (a measure parameter must then agree), else exactly one
// of measure, measureId, measureUrl or measureIdentifier.
func (h *Handler) measureRef(r *http.Request, get func(string) string) (string, error) {
	id := instanceID(r)
	refs := map[string]string{}
	for _, name := range []string{"measure", "measureId", "measureUrl", "measureIdentifier"} {
		if v := get(name); v != "" {
			refs[name] = v
		}
	}
	if id != "" {
		for _, name := range []string{"measure", "measureId"} {
			if v, ok := refs[name]; ok && v != id && v != "Measure/"+id {
				return "", outcome.Errorf(http.StatusBadRequest, "invalid", "parameter %s=%q conflicts with Measure/%s in the URL", name, v, id)
			}
		}
		return id, nil
	}
	switch {
	case len(refs) > 1:
		return "", outcome.Errorf(http.StatusBadRequest, "invalid", "give only one of measure, measureId, measureUrl, measureIdentifier")
	case refs["measure"] != "":
		return refs["measure"], nil
	case refs["measureId"] != "":
		return "Measure/" + refs["measureId"], nil
	case refs["measureUrl"] != "":
		return refs["measureUrl"], nil
	case refs["measureIdentifier"] != "":
		return h.measureByIdentifier(r.Context(), refs["measureIdentifier"])
	}
	return "", outcome.Errorf(http.StatusBadRequest, "required", "parameter measure is required at the type level (or use Measure/[id]/$evaluate-measure)")
}

// instanceID is the Measure id of an instance-level call ("" at the type
// level, where the router's id parameter holds the operation name).
func instanceID(r *http.Request) string {
	if id := chi.URLParam(r, "id"); !strings.HasPrefix(id, "$") {
		return id
	}
	return ""
}

// validDateTime accepts the FHIR dateTime forms (YYYY, YYYY-MM, YYYY-MM-DD,
// or a full date and time with an offset).
func validDateTime(s string) bool {
	for _, layout := range []string{"2006", "2006-01", "2006-01-02", time.RFC3339, "2006-01-02T15:04:05.999999999Z07:00"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

// measureByIdentifier finds a Measure by a token system|value.
func (h *Handler) measureByIdentifier(ctx context.Context, token string) (string, error) {
	res, err := h.o.Store.Search(ctx, store.Query{Type: "Measure", Count: 2, Params: []store.Param{{Name: "identifier", Values: []string{token}}}})
	if err != nil {
		var pe *store.ParamError
		if errors.As(err, &pe) {
			return "", outcome.Errorf(http.StatusBadRequest, "invalid", "parameter measureIdentifier: %s", pe.Reason)
		}
		return "", err
	}
	switch len(res.Resources) {
	case 0:
		return "", outcome.Errorf(http.StatusBadRequest, "not-found", "no Measure has identifier %s", token)
	case 1:
		return res.Resources[0].ID, nil
	}
	return "", outcome.Errorf(http.StatusBadRequest, "multiple-matches", "several Measures have identifier %s", token)
}

// catalogError renders an error of the catalog.
func catalogError(w http.ResponseWriter, err error, instance bool) {
	var he *outcome.HTTPError
	switch {
	case errors.As(err, &he):
		outcome.WriteError(w, err)
	case errors.Is(err, catalog.ErrNotFound) && instance:
		outcome.Error(w, http.StatusNotFound, "not-found", err.Error())
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrSubjectNotFound):
		outcome.Error(w, http.StatusBadRequest, "not-found", err.Error())
	case errors.Is(err, catalog.ErrBadRequest):
		outcome.Error(w, http.StatusBadRequest, "invalid", err.Error())
	case errors.Is(err, measure.ErrBadContent):
		// The measure's content on this server cannot be compiled: the
		// request is well formed but cannot be processed.
		outcome.Error(w, http.StatusUnprocessableEntity, "processing", err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		outcome.Error(w, http.StatusServiceUnavailable, "timeout", "evaluation cancelled")
	default:
		outcome.WriteError(w, err)
	}
}

// Evaluate serves $evaluate-measure.
func (h *Handler) Evaluate(w http.ResponseWriter, r *http.Request) {
	p, ok := principal(w, r, "MeasureReport", access.Read)
	if !ok {
		return
	}
	ps, err := readParams(w, r, h.o.MaxBody, evaluateParams)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	ev, err := h.parseEvaluate(r, ps)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	ctx := r.Context()
	// Compile (or find cached) before anything else, so broken content is
	// reported synchronously even for async requests.
	if _, err := h.o.Catalog.Measure(ctx, ev.req.Measure); err != nil {
		catalogError(w, err, ev.instance)
		return
	}
	ids, all, err := h.o.Catalog.Population(ctx, ev.req.Subject, ev.req.Practitioner)
	if err != nil {
		catalogError(w, err, false)
		return
	}
	if p.Restricted() {
		if strings.HasPrefix(ev.req.Subject, "Group/") && !p.SeesGroup(strings.TrimPrefix(ev.req.Subject, "Group/")) {
			outcome.Error(w, http.StatusBadRequest, "not-found", "subject "+ev.req.Subject+" not found")
			return
		}
		if all {
			if ids, err = catalog.AllPatients(ctx, h.o.Store); err != nil {
				outcome.WriteError(w, err)
				return
			}
		}
		kept := ids[:0:0]
		for _, id := range ids {
			if p.SeesPatient(id) {
				kept = append(kept, id)
			}
		}
		if strings.HasPrefix(ev.req.Subject, "Patient/") && len(kept) == 0 {
			outcome.Error(w, http.StatusBadRequest, "not-found", "subject "+ev.req.Subject+" not found")
			return
		}
		ids, all = kept, false
	}
	if !all {
		ev.req.Patients = ids
		if ev.req.Patients == nil {
			ev.req.Patients = []string{}
		}
	}
	size := len(ids)
	if all {
		if counts, err := h.o.Store.Counts(ctx); err == nil {
			size = int(counts["Patient"])
		}
	}
	prefer := parsePrefer(r.Header.Values("Prefer"))
	_, async := prefer["respond-async"]
	if !async && h.o.AsyncOver > 0 && size > h.o.AsyncOver {
		async = true
	}
	if async && h.o.Jobs != nil {
		h.kickoff(w, r, p, ev)
		return
	}
	h.respond(w, r, ev)
}

// respond evaluates synchronously. Reports are built into a temporary
// file first, so a failure is a clean error response, never half a body.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, ev *evaluation) {
	ctx := r.Context()
	tmp, err := os.CreateTemp(h.o.TempDir, ".equitas-evaluate-*")
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bw := bufio.NewWriterSize(tmp, 64<<10)
	var last *report.MeasureReport
	n := 0
	_, err = h.o.Catalog.Evaluate(ctx, ev.req, func(rep *report.MeasureReport) error {
		if last != nil {
			if err := writeLine(bw, last); err != nil {
				return err
			}
		}
		last = rep
		n++
		return nil
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		catalogError(w, err, ev.instance)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	single := ev.req.ReportType == report.TypeSummary || (ev.req.ReportType == report.TypeIndividual && strings.HasPrefix(ev.req.Subject, "Patient/") && n == 1)
	if single && last != nil {
		enc := json.NewEncoder(w)
		_ = enc.Encode(last)
		return
	}
	// A Bundle: the subject-list report first (the last one built), then
	// the individual reports its Lists reference.
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		outcome.WriteError(w, err)
		return
	}
	base := strings.TrimRight(h.o.Base(r), "/")
	out := report.NewBundleWriter(w)
	if ev.req.ReportType == report.TypeSubjectList && last != nil {
		_ = out.AddWithURL(last, base+"/MeasureReport/"+last.ID)
	}
	sc := bufio.NewScanner(tmp)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		id, _ := jsonID(sc.Bytes())
		if err := out.AddRaw(sc.Bytes(), base+"/MeasureReport/"+id); err != nil {
			return
		}
	}
	if ev.req.ReportType == report.TypeIndividual && last != nil {
		_ = out.AddWithURL(last, base+"/MeasureReport/"+last.ID)
	}
	_ = out.Close()
}

func writeLine(w *bufio.Writer, rep *report.MeasureReport) error {
	raw, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	return w.WriteByte('\n')
}

func jsonID(raw []byte) (string, error) {
	var v struct {
		ID string `json:"id"`
	}
	err := json.Unmarshal(raw, &v)
	return v.ID, err
}

// parsePrefer splits Prefer headers into their preferences.
func parsePrefer(values []string) map[string]string {
	out := map[string]string{}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			if k != "" {
				out[strings.ToLower(k)] = strings.Trim(val, `"`)
			}
		}
	}
	return out
}

// jobParams are what an asynchronous evaluation needs to run later.
type jobParams struct {
	Request catalog.Request `json:"request"`
	Base    string          `json:"base"`
}

// kickoff starts an asynchronous evaluation: 202 with Content-Location.
func (h *Handler) kickoff(w http.ResponseWriter, r *http.Request, p *access.Principal, ev *evaluation) {
	base := strings.TrimRight(h.o.Base(r), "/")
	rec, err := h.o.Jobs.Submit(r.Context(), JobKind, p.ClientID, base+strings.TrimPrefix(r.URL.RequestURI(), rest.BasePath), jobParams{Request: ev.req, Base: base})
	if errors.Is(err, job.ErrTooManyJobs) {
		w.Header().Set("Retry-After", "60")
		outcome.Error(w, http.StatusTooManyRequests, "too-costly", "too many jobs in progress for this client")
		return
	}
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Location", base+"/bulkstatus/"+rec.ID)
	outcome.Write(w, http.StatusAccepted, outcome.New("information", "informational", "evaluation accepted; poll the Content-Location URL"))
}

// manifest is the completed job's status body (Bulk Data manifest shape).
type manifest struct {
	TransactionTime     string         `json:"transactionTime"`
	Request             string         `json:"request"`
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []manifestFile `json:"output"`
	Error               []manifestFile `json:"error"`
}

type manifestFile struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int    `json:"count,omitempty"`
}

// reportFile is the name of the job's output (the summary or subject-list
// report is its last line).
const reportFile = "MeasureReport-1.ndjson"

// runJob runs an asynchronous evaluation into dir.
func (h *Handler) runJob(ctx context.Context, rec *job.Record, dir string, progress func(string)) ([]byte, error) {
	var p jobParams
	if err := json.Unmarshal(rec.Params, &p); err != nil {
		return nil, fmt.Errorf("evaluate-measure job %s: params: %w", rec.ID, err)
	}
	f, err := os.Create(dir + "/" + reportFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 64<<10)
	rec.TransactionTime = time.Now().UTC()
	n := 0
	started := time.Now()
	_, err = h.o.Catalog.Evaluate(ctx, p.Request, func(rep *report.MeasureReport) error {
		n++
		if n%10000 == 0 {
			progress(fmt.Sprintf("%d reports in %s", n, time.Since(started).Round(time.Second)))
		}
		return writeLine(bw, rep)
	})
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return nil, err
	}
	// The manifest holds URLs: keep their & and < unescaped.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err = enc.Encode(manifest{
		TransactionTime:     rec.TransactionTime.Format(time.RFC3339Nano),
		Request:             rec.Request,
		RequiresAccessToken: h.o.RequiresAccessToken,
		Output:              []manifestFile{{Type: "MeasureReport", URL: p.Base + "/bulkfiles/" + rec.ID + "/" + reportFile, Count: n}},
		Error:               []manifestFile{},
	})
	return bytes.TrimSpace(buf.Bytes()), err
}
