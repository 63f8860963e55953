package measureapi

import (
	"net/http"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/measure"
)

var dataRequirementsParams = map[string]bool{"periodStart": true, "periodEnd": true, "measure": true, "measureId": true, "measureUrl": true, "measureIdentifier": true}

// DataRequirements serves $data-requirements: a module-definition Library
// listing the data the measure's ELM retrieves. The period is optional
// (it only fills date filters).
func (h *Handler) DataRequirements(w http.ResponseWriter, r *http.Request) {
	if _, ok := principal(w, r, "Measure", access.Read); !ok {
		return
	}
	ps, err := readParams(w, r, h.o.MaxBody, dataRequirementsParams)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	for name := range ps {
		if _, err := ps.one(name); err != nil {
			outcome.WriteError(w, err)
			return
		}
	}
	get := func(name string) string {
		v, _ := ps.one(name)
		return v
	}
	ref, err := h.measureRef(r, get)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	var period *measure.Period
	start, end := get("periodStart"), get("periodEnd")
	switch {
	case start != "" && end != "":
		p, err := measure.NewPeriod(start, end)
		if err != nil {
			outcome.Error(w, http.StatusBadRequest, "invalid", "periodStart/periodEnd: "+err.Error())
			return
		}
		period = &p
	case start != "" || end != "":
		outcome.Error(w, http.StatusBadRequest, "required", "give both periodStart and periodEnd, or neither")
		return
	}
	lib, err := h.o.Catalog.DataRequirements(r.Context(), ref, period)
	if err != nil {
		catalogError(w, err, instanceID(r) != "")
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	_, _ = w.Write(lib)
}

var submitDataParams = map[string]bool{"measureReport": true, "resource": true}

// SubmitData serves $submit-data (DEQM): a data-collection MeasureReport
// and resources, written atomically; resubmitting a report with the same
// identifier changes nothing.
func (h *Handler) SubmitData(w http.ResponseWriter, r *http.Request) {
	if _, ok := principal(w, r, "MeasureReport", access.Create); !ok {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		outcome.Error(w, http.StatusMethodNotAllowed, "not-supported", "$submit-data takes a POSTed Parameters resource")
		return
	}
	ps, err := readParams(w, r, h.o.MaxBody, submitDataParams)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	mrs := ps["measureReport"]
	if len(mrs) != 1 || mrs[0].resource == nil {
		outcome.Error(w, http.StatusBadRequest, "required", "exactly one measureReport parameter holding a MeasureReport resource is required")
		return
	}
	sub := catalog.Submission{MeasureReport: mrs[0].resource, Measure: instanceID(r)}
	for i, p := range ps["resource"] {
		if p.resource == nil {
			outcome.WriteError(w, outcome.Errorf(http.StatusBadRequest, "invalid", "resource parameter %d holds no resource", i))
			return
		}
		sub.Resources = append(sub.Resources, p.resource)
	}
	res, err := h.o.Catalog.Submit(r.Context(), h.v, sub)
	if err != nil {
		catalogError(w, err, sub.Measure != "")
		return
	}
	msg := "submitted: MeasureReport/" + res.ReportID
	if res.Duplicate {
		msg = "already submitted: MeasureReport/" + res.ReportID + " (nothing written)"
	}
	outcome.Write(w, http.StatusOK, outcome.New("information", "informational", msg))
}
