package equityapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/equity"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/patientsource"
	"github.com/equitas/equitas/store"
)

// setPrior fills the prior period. A start alone makes a prior period that
// ends the day before the current one starts; an end needs a start.
func setPrior(o *equity.RunOptions, start, end string) error {
	switch {
	case start == "" && end == "":
		return nil
	case start == "":
		return bad("priorPeriodEnd needs priorPeriodStart")
	case end == "":
		cur, err := time.Parse(time.DateOnly, o.PeriodStart[:min(len(o.PeriodStart), 10)])
		if err != nil || len(o.PeriodStart) < 10 {
			return bad("give priorPeriodEnd (periodStart %q is not a full date)", o.PeriodStart)
		}
		end = cur.AddDate(0, 0, -1).Format(time.DateOnly)
	}
	if _, err := measure.NewPeriod(start, end); err != nil {
		return bad("prior period: %v", err)
	}
	if len(start) >= 10 && len(o.PeriodStart) >= 10 && start[:10] >= o.PeriodStart[:10] {
		return bad("priorPeriodStart %s must be before periodStart %s", start, o.PeriodStart)
	}
	o.PriorStart, o.PriorEnd = start, end
	return nil
}

// setBenchmarks reads "0.7" (every measure) or "MEASURE:0.7" (split at the
// last colon, so canonical URLs work) values.
func setBenchmarks(o *equity.RunOptions, vs []string) error {
	for _, v := range list(vs) {
		key, num := "", v
		if i := strings.LastIndexByte(v, ':'); i >= 0 {
			key, num = v[:i], v[i+1:]
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || math.IsNaN(f) || f <= 0 || f > 1 {
			return bad("benchmark %q: want a rate in (0, 1], optionally prefixed by MEASURE:", v)
		}
		if key == "" {
			if o.Analysis.Benchmark != 0 {
				return bad("only one benchmark without a measure prefix")
			}
			o.Analysis.Benchmark = f
			continue
		}
		if o.Benchmarks == nil {
			o.Benchmarks = map[string]float64{}
		}
		o.Benchmarks[strings.TrimPrefix(key, "Measure/")] = f
	}
	return nil
}

// population is the source of patients the caller may report on: a
// Group's members when subject is given, else every patient; a provider
// client is limited to its attributed patients either way.
func (h *Handler) population(ctx context.Context, p *access.Principal, subject string) (patientsource.Source, string, string, error) {
	src := patientsource.NewStore(h.st)
	entityID, entityType := "", ""
	if p.Restricted() {
		entityID, entityType = p.Organization, "Organization"
	}
	var ids []string
	switch {
	case subject != "":
		gid := strings.TrimPrefix(subject, "Group/")
		if !p.SeesGroup(gid) {
			return nil, "", "", outcome.Errorf(http.StatusNotFound, "not-found", "Group/%s is not known", gid)
		}
		members, err := h.groupMembers(ctx, gid)
		if err != nil {
			return nil, "", "", err
		}
		ids, entityID, entityType = members, subject, "Group"
	case p.Restricted():
		var err error
		if ids, err = catalog.AllPatients(ctx, h.st); err != nil {
			return nil, "", "", fmt.Errorf("equityapi: %w", err)
		}
	default:
		return src, entityID, entityType, nil
	}
	kept := ids[:0]
	for _, id := range ids {
		if p.SeesPatient(id) {
			kept = append(kept, id)
		}
	}
	src.Patients = kept
	return src, entityID, entityType, nil
}

// groupMembers lists a Group's patients in id order through
// catalog.GroupMembers, the rule $evaluate-measure and $care-gaps use too.
func (h *Handler) groupMembers(ctx context.Context, gid string) ([]string, error) {
	set, err := catalog.GroupMembers(ctx, h.st, gid, time.Time{})
	if errors.Is(err, catalog.ErrSubjectNotFound) {
		return nil, outcome.Errorf(http.StatusNotFound, "not-found", "Group/%s is not known", gid)
	}
	if err != nil {
		return nil, fmt.Errorf("equityapi: %w", err)
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// attributor names a patient's attributed provider from the attribution
// index: the clinician's NPI of the first active list membership at the
// period end, else the provider organization.
type attributor struct{ kv store.KV }

func (a attributor) AttributedProvider(ctx context.Context, patientID string, at time.Time) (string, error) {
	as, err := attribution.Assignments(ctx, a.kv, patientID, at)
	if err != nil || len(as) == 0 {
		return "", err
	}
	switch {
	case as[0].ProviderNPI != "":
		return "NPI/" + as[0].ProviderNPI, nil
	case as[0].OrganizationID != "":
		return "Organization/" + as[0].OrganizationID, nil
	}
	return "", nil
}
