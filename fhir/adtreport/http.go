package adtreport

import (
	"bytes"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/store"
)

// Definition is the canonical of the $adt-report OperationDefinition.
const Definition = "http://equitas.example/fhir/OperationDefinition/Group-adt-report"

// Handler serves GET [base]/Group/[id]/$adt-report?date=YYYY-MM-DD as a
// FHIR Bundle, or as CSV with _format=csv|text/csv or Accept: text/csv.
type Handler struct {
	st   store.Store
	base func(*http.Request) string
	opts Options
	log  *slog.Logger
}

// NewHandler returns the $adt-report handler; base gives the FHIR base URL
// of a request.
func NewHandler(st store.Store, base func(*http.Request) string, opts Options, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{st: st, base: base, opts: opts, log: log}
}

// Mount registers the operation on srv, answering FHIR JSON and CSV.
func (h *Handler) Mount(srv *rest.Server) {
	srv.Operation(rest.Operation{Name: "adt-report", Level: rest.Instance, Types: []string{"Group"}, Definition: Definition,
		Formats: []string{"text/csv", "csv"}, Handler: h})
}

// ServeHTTP serves the report (see Handler).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		outcome.Error(w, http.StatusMethodNotAllowed, "not-supported", "$adt-report is GET")
		return
	}
	p := access.FromContext(r.Context())
	if p == nil {
		outcome.Error(w, http.StatusUnauthorized, "login", "authentication required")
		return
	}
	if !p.Allows("Group", access.Read) || !p.Allows("Encounter", access.Read) {
		outcome.Error(w, http.StatusForbidden, "forbidden", "scope does not allow reading Group and Encounter")
		return
	}
	csvOut, err := wantsCSV(r)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	date, err := parseParams(r)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	id := chi.URLParam(r, "id")
	if !p.SeesGroup(id) {
		outcome.Error(w, http.StatusNotFound, "not-found", "Group/"+id+" is not an attribution list")
		return
	}
	opts := h.opts
	if p.Restricted() {
		opts.SeesPatient = p.SeesPatient
	}
	rep, err := Build(r.Context(), h.st, id, date, opts)
	if errors.Is(err, ErrNotFound) {
		outcome.Error(w, http.StatusNotFound, "not-found", "Group/"+id+" is not an attribution list")
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	ct := "application/fhir+json; charset=utf-8"
	if csvOut {
		ct = "text/csv; charset=utf-8"
		err = rep.WriteCSV(&buf)
	} else {
		err = rep.WriteBundle(&buf, h.base(r))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ct)
	if csvOut {
		w.Header().Set("Content-Disposition", `attachment; filename="adt-report-`+id+`-`+rep.Date+`.csv"`)
	}
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "adt-report failed", "error", err)
	outcome.Error(w, http.StatusInternalServerError, "exception", "internal error")
}

// parseParams reads date (required, YYYY-MM-DD); any other parameter but
// _format is an error.
func parseParams(r *http.Request) (time.Time, error) {
	q := r.URL.Query()
	for name := range q {
		if name != "date" && name != "_format" {
			return time.Time{}, bad("%s is not a parameter of $adt-report (date, _format)", name)
		}
	}
	vals := q["date"]
	if len(vals) != 1 || vals[0] == "" {
		return time.Time{}, bad("date is required once, as YYYY-MM-DD")
	}
	d, err := time.Parse(time.DateOnly, vals[0])
	if err != nil {
		return time.Time{}, bad("date %q is not a date (YYYY-MM-DD)", vals[0])
	}
	return d, nil
}

func bad(format string, args ...any) error {
	return outcome.Errorf(http.StatusBadRequest, "invalid", format, args...)
}

// wantsCSV negotiates the format: _format wins over Accept; FHIR JSON and
// CSV are spoken.
func wantsCSV(r *http.Request) (bool, error) {
	if f := r.URL.Query().Get("_format"); f != "" {
		f = strings.ToLower(strings.ReplaceAll(f, " ", "+"))
		mt, _, err := mime.ParseMediaType(f)
		if err != nil {
			mt = f
		}
		switch mt {
		case "csv", "text/csv":
			return true, nil
		case "json", "application/json", "application/fhir+json", "application/json+fhir":
			return false, nil
		}
		return false, outcome.Errorf(http.StatusNotAcceptable, "not-supported", "_format %s is not supported; use json or text/csv", f)
	}
	accept := r.Header.Get("Accept")
	if accept == "" {
		return false, nil
	}
	// The first acceptable type listed wins (clients list their preference first).
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["q"] == "0" {
			continue
		}
		switch strings.ToLower(mt) {
		case "text/csv":
			return true, nil
		case "application/fhir+json", "application/json", "application/json+fhir", "*/*", "application/*":
			return false, nil
		}
	}
	return false, outcome.Errorf(http.StatusNotAcceptable, "not-supported", "Accept %s is not supported; use application/fhir+json or text/csv", accept)
}
