// Package equityapi serves the system-level $equity-report operation: it
// translates the HTTP request (query or Parameters body) into an
// equity.RunOptions over the store's population (all patients, a Group's
// members, or a provider client's attributed patients), runs
// measures/equity, and writes the FHIR Parameters, the tidy CSV, the
// indices CSV or the dashboard JSON.
package equityapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/equity"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/store"
)

// Name is the operation name, Definition its OperationDefinition canonical.
const (
	Name       = "equity-report"
	Definition = "http://equitas.example/fhir/OperationDefinition/equity-report"
)

// Measures resolves a measure reference (id, Measure/id, canonical
// url[|version]); *catalog.Catalog is one.
type Measures interface {
	Measure(ctx context.Context, ref string) (*measure.Measure, error)
}

// Options configure the handler.
type Options struct {
	// SVI is the default social vulnerability table (a request's sviTable
	// replaces it).
	SVI       equity.SVITable
	Hierarchy equity.RaceHierarchy
	FHIR      equity.FHIROptions
	// Workers evaluating patients; 0 means GOMAXPROCS.
	Workers int
	// MaxBodyBytes bounds a POSTed Parameters body; 0 means 4 MiB.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Handler serves $equity-report.
type Handler struct {
	st   store.Store
	ms   Measures
	opts Options
	log  *slog.Logger
}

// New returns a handler reading patients from st and measures from ms.
func New(st store.Store, ms Measures, opts Options) *Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{st: st, ms: ms, opts: opts, log: log}
}

// Operation is the system-level operation to register on a rest.Server.
func (h *Handler) Operation() rest.Operation {
	return rest.Operation{Name: Name, Level: rest.System, Definition: Definition, Handler: h,
		Formats: []string{"text/csv", "application/json"}}
}

// Output formats.
const (
	OutputFHIR       = "fhir"
	OutputCSV        = "csv"
	OutputIndicesCSV = "indices-csv"
	OutputDashboard  = "dashboard"
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := access.FromContext(r.Context())
	if p == nil {
		outcome.Error(w, http.StatusUnauthorized, "login", "authentication required")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, POST")
		outcome.Error(w, http.StatusMethodNotAllowed, "not-supported", "$equity-report takes GET or POST")
		return
	}
	if !p.Allows("Patient", access.Read) || !p.Allows("MeasureReport", access.Read) {
		outcome.Error(w, http.StatusForbidden, "forbidden", "$equity-report needs read access to Patient and MeasureReport")
		return
	}
	vals, err := h.values(w, r)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	req, err := h.parse(r.Context(), vals, r.Header.Get("Accept"))
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	src, entityID, entityType, err := h.population(r.Context(), p, req.subject)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	req.run.EntityID, req.run.EntityType = entityID, entityType
	res, err := equity.Run(r.Context(), src, req.measures, req.run)
	switch {
	case errors.Is(err, equity.ErrPeriod) || errors.Is(err, equity.ErrPriorReport):
		outcome.Error(w, http.StatusBadRequest, "invalid", err.Error())
		return
	case err != nil && r.Context().Err() != nil:
		return // the client went away
	case err != nil:
		h.log.Error("equity report failed", "error", err)
		outcome.Error(w, http.StatusInternalServerError, "exception", "the equity report could not be computed")
		return
	}
	h.log.Info("equity report", "measures", len(req.measures), "patients", res.Patients, "failed", res.Failed,
		"elapsed_ms", res.Elapsed.Milliseconds(), "client", p.ClientID)
	h.write(w, req.output, res)
}

func (h *Handler) write(w http.ResponseWriter, output string, res *equity.Result) {
	var body []byte
	var err error
	ct := "application/fhir+json; charset=utf-8"
	switch output {
	case OutputCSV, OutputIndicesCSV:
		var tidy, indices strings.Builder
		if err = res.WriteCSV(&tidy, &indices); err == nil {
			body = []byte(tidy.String())
			if output == OutputIndicesCSV {
				body = []byte(indices.String())
			}
		}
		ct = "text/csv; charset=utf-8"
	case OutputDashboard:
		body, err = res.DashboardJSON()
		ct = "application/json"
	default:
		body, err = res.ParametersJSON()
	}
	if err != nil {
		h.log.Error("equity report rendering failed", "error", err)
		outcome.Error(w, http.StatusInternalServerError, "exception", "the equity report could not be rendered")
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// values collects the parameters: the query, plus a Parameters body on POST.
func (h *Handler) values(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	vals := url.Values{}
	for k, vs := range r.URL.Query() {
		vals[k] = append(vals[k], vs...)
	}
	if r.Method != http.MethodPost || r.ContentLength == 0 {
		return vals, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err == nil && mt == "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "form body: %v", err)
		}
		for k, vs := range r.PostForm {
			vals[k] = append(vals[k], vs...)
		}
		return vals, nil
	case err != nil || (mt != "application/fhir+json" && mt != "application/json"):
		return nil, outcome.Errorf(http.StatusUnsupportedMediaType, "not-supported", "send a Parameters resource as application/fhir+json")
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	var body struct {
		ResourceType string `json:"resourceType"`
		Parameter    []map[string]json.RawMessage
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, outcome.Errorf(http.StatusRequestEntityTooLarge, "too-costly", "body exceeds %d bytes", h.opts.MaxBodyBytes)
		}
		return nil, outcome.Errorf(http.StatusBadRequest, "structure", "malformed Parameters body: %v", err)
	}
	if body.ResourceType != "Parameters" {
		return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "the body must be a Parameters resource, not %q", body.ResourceType)
	}
	for i, prm := range body.Parameter {
		name, v, err := parameterValue(prm)
		if err != nil {
			return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "parameter[%d]: %v", i, err)
		}
		vals.Add(name, v)
	}
	return vals, nil
}

// parameterValue reads one Parameters.parameter as a string: primitive
// values as their text, a Reference as its reference, an Attachment as its
// (base64-decoded) data.
func parameterValue(prm map[string]json.RawMessage) (name, value string, err error) {
	if err := json.Unmarshal(prm["name"], &name); err != nil || name == "" {
		return "", "", errors.New("missing name")
	}
	for k, raw := range prm {
		if !strings.HasPrefix(k, "value") {
			if k != "name" && k != "extension" && k != "id" {
				return "", "", fmt.Errorf("%s: %s is not supported", name, k)
			}
			continue
		}
		switch k {
		case "valueReference":
			var ref struct {
				Reference string `json:"reference"`
			}
			if err := json.Unmarshal(raw, &ref); err != nil || ref.Reference == "" {
				return "", "", fmt.Errorf("%s: valueReference needs a reference", name)
			}
			return name, ref.Reference, nil
		case "valueAttachment":
			var att struct {
				Data string `json:"data"`
			}
			if err := json.Unmarshal(raw, &att); err != nil {
				return "", "", fmt.Errorf("%s: %w", name, err)
			}
			b, err := base64.StdEncoding.DecodeString(att.Data)
			if err != nil {
				return "", "", fmt.Errorf("%s: attachment data is not base64", name)
			}
			return name, string(b), nil
		case "valueDecimal", "valueInteger", "valuePositiveInt", "valueUnsignedInt", "valueBoolean":
			var n json.RawMessage
			if err := json.Unmarshal(raw, &n); err != nil {
				return "", "", fmt.Errorf("%s: %w", name, err)
			}
			return name, string(n), nil
		default:
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", "", fmt.Errorf("%s: %s must be a string-valued type", name, k)
			}
			return name, s, nil
		}
	}
	return "", "", fmt.Errorf("%s: no value", name)
}

// request is a parsed $equity-report request.
type request struct {
	measures []*measure.Measure
	run      equity.RunOptions
	subject  string
	output   string
}

// known lists the accepted parameters; anything else is a 400.
var known = map[string]bool{"measure": true, "periodStart": true, "periodEnd": true, "stratifier": true,
	"reference": true, "benchmark": true, "priorPeriodStart": true, "priorPeriodEnd": true, "subject": true,
	"equityWeight": true, "equityPool": true, "sviTable": true, "minDenominator": true, "output": true, "_format": true, "priorReport": true}

// single are the parameters that may be given once.
var single = []string{"periodStart", "periodEnd", "reference", "priorPeriodStart", "priorPeriodEnd", "subject",
	"equityWeight", "equityPool", "sviTable", "minDenominator", "output", "_format", "priorReport"}

func bad(format string, args ...any) error {
	return outcome.Errorf(http.StatusBadRequest, "invalid", format, args...)
}

// list splits repeated and comma-separated values.
func list(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (h *Handler) parse(ctx context.Context, vals url.Values, accept string) (*request, error) {
	for k := range vals {
		if !known[k] {
			return nil, outcome.Errorf(http.StatusBadRequest, "not-supported", "unknown parameter %q", k)
		}
	}
	for _, k := range single {
		if len(vals[k]) > 1 {
			return nil, bad("parameter %s may be given once", k)
		}
	}
	req := &request{subject: vals.Get("subject"), output: OutputFHIR}
	if err := req.setOutput(vals.Get("output"), vals.Get("_format"), accept); err != nil {
		return nil, err
	}
	refs := list(vals["measure"])
	if len(refs) == 0 {
		return nil, bad("parameter measure is required")
	}
	for _, ref := range refs {
		m, err := h.ms.Measure(ctx, ref)
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, outcome.Errorf(http.StatusBadRequest, "not-found", "measure %q is not loaded on this server", ref)
		}
		if err != nil {
			return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "measure %q: %v", ref, err)
		}
		req.measures = append(req.measures, m)
	}
	o := &req.run
	o.PeriodStart, o.PeriodEnd = vals.Get("periodStart"), vals.Get("periodEnd")
	if o.PeriodStart == "" && o.PeriodEnd == "" {
		def := req.measures[0].Def
		o.PeriodStart, o.PeriodEnd = def.EffectiveStart, def.EffectiveEnd
	}
	if o.PeriodStart == "" || o.PeriodEnd == "" {
		return nil, bad("give both periodStart and periodEnd (or neither, for the measure's effectivePeriod)")
	}
	if _, err := measure.NewPeriod(o.PeriodStart, o.PeriodEnd); err != nil {
		return nil, bad("period: %v", err)
	}
	if err := setPrior(o, vals.Get("priorPeriodStart"), vals.Get("priorPeriodEnd")); err != nil {
		return nil, err
	}
	if pr := vals.Get("priorReport"); pr != "" {
		if o.PriorStart != "" {
			return nil, bad("give priorPeriodStart or priorReport, not both")
		}
		d, err := equity.ParseDashboard([]byte(pr))
		if err != nil {
			return nil, bad("priorReport (a $equity-report output=dashboard document): %v", err)
		}
		if d.Period.End >= o.PeriodStart {
			return nil, bad("priorReport covers %s to %s, which does not precede periodStart %s", d.Period.Start, d.Period.End, o.PeriodStart)
		}
		o.PriorReport = d
	}
	for _, s := range list(vals["stratifier"]) {
		dims, err := equity.ParseStratifier(s)
		if err != nil {
			return nil, bad("stratifier %q: %v", s, err)
		}
		o.Stratifiers = append(o.Stratifiers, dims)
	}
	switch ref := vals.Get("reference"); ref {
	case "", "best", "largest", "overall", "best-or-benchmark":
		o.Analysis.Strategy = equity.RefStrategy(ref)
	case "benchmark", "fixed":
		o.Analysis.Strategy = equity.RefFixed
	default:
		return nil, bad("reference must be best, largest, overall, benchmark or best-or-benchmark, not %q", ref)
	}
	if err := setBenchmarks(o, vals["benchmark"]); err != nil {
		return nil, err
	}
	if (o.Analysis.Strategy == equity.RefFixed || o.Analysis.Strategy == equity.RefBestOrBenchmark) && o.Analysis.Benchmark == 0 {
		for _, m := range req.measures {
			if _, ok := equity.BenchmarkFor(o.Benchmarks, m.Def); !ok {
				return nil, bad("reference %s needs a benchmark for measure %s", o.Analysis.Strategy, m.Def.Name)
			}
		}
	}
	var err error
	if o.EquityWeight, err = number(vals, "equityWeight", 0.2, 1, 0); err != nil {
		return nil, err
	}
	if o.PoolAmount, err = number(vals, "equityPool", 0, math.MaxFloat64, 0); err != nil {
		return nil, err
	}
	md, err := number(vals, "minDenominator", 1, 1e9, 0)
	if err != nil {
		return nil, err
	}
	if md != math.Trunc(md) {
		return nil, bad("minDenominator must be a whole number")
	}
	o.Analysis.Policy.MinDenominator = int(md)
	o.SVI = h.opts.SVI
	if t := vals.Get("sviTable"); t != "" {
		if o.SVI, err = equity.LoadSVITable(t); err != nil {
			return nil, bad("sviTable: %v", err)
		}
	}
	o.Hierarchy, o.FHIR, o.Workers = h.opts.Hierarchy, h.opts.FHIR, h.opts.Workers
	o.Attribution = attributor{h.st.KV()}
	if h.opts.Now != nil {
		o.Now = h.opts.Now()
	}
	if gid, ok := strings.CutPrefix(req.subject, "Group/"); req.subject != "" && (!ok || gid == "" || strings.Contains(gid, "/")) {
		return nil, bad("subject must be Group/<id>")
	}
	return req, nil
}

func (req *request) setOutput(output, format, accept string) error {
	switch output {
	case "":
	case OutputFHIR, OutputCSV, OutputIndicesCSV, OutputDashboard:
		req.output = output
		return nil
	default:
		return bad("output must be fhir, csv, indices-csv or dashboard, not %q", output)
	}
	if format != "" {
		mt, _, err := mime.ParseMediaType(strings.ReplaceAll(format, " ", "+"))
		if err != nil {
			mt = format
		}
		switch strings.ToLower(mt) {
		case "json", "application/json", "application/fhir+json", "application/json+fhir":
		case "csv", "text/csv":
			req.output = OutputCSV
		default:
			return outcome.Errorf(http.StatusNotAcceptable, "not-supported", "_format %s is not supported here (fhir+json or text/csv)", format)
		}
		return nil
	}
	for _, part := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/csv" {
			req.output = OutputCSV
		}
	}
	return nil
}

func number(vals url.Values, name string, lo, hi, def float64) (float64, error) {
	s := vals.Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v < lo || v > hi {
		if hi == math.MaxFloat64 {
			return 0, bad("%s must be a number ≥ %g", name, lo)
		}
		return 0, bad("%s must be a number between %g and %g", name, lo, hi)
	}
	return v, nil
}

// Mount registers $equity-report on srv; the operation answers FHIR JSON,
// CSV (_format=text/csv or Accept: text/csv) and the dashboard's JSON.
func (h *Handler) Mount(srv *rest.Server) {
	srv.Operation(h.Operation())
}
