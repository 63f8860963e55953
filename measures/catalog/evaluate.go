package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/patientsource"
	"github.com/equitas/equitas/measures/report"
	"github.com/equitas/equitas/store"
)

// ErrSubjectNotFound is returned when a subject or practitioner reference
// names nothing in the store.
var ErrSubjectNotFound = errors.New("catalog: subject not found")

// ErrBadRequest wraps request problems found while evaluating (e.g. a
// subject of the wrong type).
var ErrBadRequest = errors.New("catalog: bad request")

// Request is one $evaluate-measure after parameter parsing.
type Request struct {
	// Measure is a Measure id, "Measure/id" or canonical url[|version].
	Measure string
	Period  measure.Period
	// ReportType is report.TypeIndividual, TypeSubjectList or TypeSummary.
	ReportType string
	// Subject is "", "Patient/id" or "Group/id"; Practitioner is "" or
	// "Practitioner/id" (patients whose generalPractitioner it is, or who
	// are attributed to it on an ATR list). Both given: the intersection.
	Subject, Practitioner string
	// Reporter is the report's reporter reference; ReporterDisplay its text.
	Reporter, ReporterDisplay string
	// Patients, when non-nil, is the population, already resolved (e.g.
	// restricted to what the caller may see); Subject and Practitioner are
	// then not looked up again.
	Patients []string
	// Workers bounds parallel evaluation (0: GOMAXPROCS).
	Workers int
}

// Population returns the patient ids a request covers, sorted, or nil and
// all=true for every patient of the store.
func (c *Catalog) Population(ctx context.Context, subject, practitioner string) (ids []string, all bool, err error) {
	var set map[string]bool
	if subject != "" {
		typ, id, _ := strings.Cut(subject, "/")
		switch typ {
		case "Patient":
			if _, err := c.st.Read(ctx, "Patient", id); err != nil {
				if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
					return nil, false, fmt.Errorf("%w: %s", ErrSubjectNotFound, subject)
				}
				return nil, false, fmt.Errorf("catalog: reading %s: %w", subject, err)
			}
			set = map[string]bool{id: true}
		case "Group":
			if set, err = c.groupMembers(ctx, id); err != nil {
				return nil, false, err
			}
		default:
			return nil, false, fmt.Errorf("%w: subject %q must be Patient/id or Group/id", ErrBadRequest, subject)
		}
	}
	if practitioner != "" {
		typ, id, _ := strings.Cut(practitioner, "/")
		if typ != "Practitioner" || id == "" || strings.Contains(id, "/") {
			return nil, false, fmt.Errorf("%w: practitioner %q must be Practitioner/id", ErrBadRequest, practitioner)
		}
		theirs, err := c.practitionerPatients(ctx, id)
		if err != nil {
			return nil, false, err
		}
		if set == nil {
			set = theirs
		} else {
			for p := range set {
				if !theirs[p] {
					delete(set, p)
				}
			}
		}
	}
	if set == nil {
		return nil, true, nil
	}
	ids = make([]string, 0, len(set))
	for p := range set {
		ids = append(ids, p)
	}
	sort.Strings(ids)
	return ids, false, nil
}

func (c *Catalog) groupMembers(ctx context.Context, id string) (map[string]bool, error) {
	return GroupMembers(ctx, c.st, id, time.Time{})
}

// AllPatients lists the id of every Patient of st, for callers that must
// narrow "every patient" to those a client may see (all=true of
// Population names no ids).
func AllPatients(ctx context.Context, st store.Store) ([]string, error) {
	ids := []string{}
	err := st.Scan(ctx, "Patient", time.Time{}, func(r *store.Resource) error {
		ids = append(ids, r.ID)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: listing patients: %w", err)
	}
	return ids, nil
}

// GroupMembers returns the patients of Group/id: an ATR list's active
// members from the attribution index (its stored Group carries no member
// array), else the stored Group's active Patient members. A non-zero at
// keeps only the ATR memberships whose period covers that day. A missing
// Group is ErrSubjectNotFound. The measure server, care gaps and equity
// reports all resolve a Group subject through it, so they cover the same
// patients.
func GroupMembers(ctx context.Context, st store.Store, id string, at time.Time) (map[string]bool, error) {
	kv := st.KV()
	if _, err := attribution.Group(ctx, kv, id); err == nil {
		day := ""
		if !at.IsZero() {
			day = at.UTC().Format(time.DateOnly)
		}
		out := map[string]bool{}
		err := attribution.Members(ctx, kv, id, func(e *attribution.Entry) error {
			if !e.Inactive && (day == "" || covers(e.PeriodStart, e.PeriodEnd, day)) {
				out[e.PatientID] = true
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("catalog: members of Group/%s: %w", id, err)
		}
		return out, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("catalog: reading attribution list %s: %w", id, err)
	}
	r, err := st.Read(ctx, "Group", id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		return nil, fmt.Errorf("%w: Group/%s", ErrSubjectNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: reading Group/%s: %w", id, err)
	}
	out := map[string]bool{}
	gjson.GetBytes(r.Body, "member").ForEach(func(_, m gjson.Result) bool {
		if m.Get("inactive").Bool() {
			return true
		}
		if p, ok := strings.CutPrefix(m.Get("entity.reference").String(), "Patient/"); ok && p != "" && !strings.Contains(p, "/") {
			out[p] = true
		}
		return true
	})
	return out, nil
}

// covers reports whether a membership period, whose bounds are partial
// dates or dateTimes, includes day; comparing the date prefixes is enough
// because attribution periods are whole days.
func covers(start, end, day string) bool {
	if start != "" && dateOnly(start) > day {
		return false
	}
	return end == "" || dateOnly(end) >= day
}

func dateOnly(s string) string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// practitionerPatients returns the patients whose generalPractitioner is
// Practitioner/id or who are attributed to it on an ATR list.
func (c *Catalog) practitionerPatients(ctx context.Context, id string) (map[string]bool, error) {
	if _, err := c.st.Read(ctx, "Practitioner", id); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
			return nil, fmt.Errorf("%w: Practitioner/%s", ErrSubjectNotFound, id)
		}
		return nil, fmt.Errorf("catalog: reading Practitioner/%s: %w", id, err)
	}
	out := map[string]bool{}
	q := store.Query{Type: "Patient", Count: 1000, Params: []store.Param{{Name: "general-practitioner", Values: []string{"Practitioner/" + id}}}}
	for {
		res, err := c.st.Search(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("catalog: patients of Practitioner/%s: %w", id, err)
		}
		for _, r := range res.Resources {
			out[r.ID] = true
		}
		if res.NextCursor == "" {
			break
		}
		q.Cursor = res.NextCursor
	}
	groups, err := attribution.Groups(ctx, c.st.KV())
	if err != nil {
		return nil, fmt.Errorf("catalog: attribution lists: %w", err)
	}
	for _, g := range groups {
		err := attribution.Members(ctx, c.st.KV(), g.ID, func(e *attribution.Entry) error {
			if !e.Inactive && e.Provider.PractitionerID == id {
				out[e.PatientID] = true
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("catalog: members of Group/%s: %w", g.ID, err)
		}
	}
	return out, nil
}

// Evaluate evaluates req and hands the reports to out, in this order:
// individual reports, one per patient as evaluated (report type
// individual, or the reports a subject-list's Lists point to), then the
// subject-list or summary report. Individual reports of a subject-list
// have ids "<subject-list id>-<n>" so the Lists reference them as
// MeasureReport/<id>. Patients are evaluated in parallel (measure.Run)
// from one snapshot of the store.
func (c *Catalog) Evaluate(ctx context.Context, req Request, out func(*report.MeasureReport) error) (measure.Stats, error) {
	e, err := c.entry(ctx, req.Measure)
	if err != nil {
		return measure.Stats{}, err
	}
	m := e.m
	ids, all := req.Patients, false
	if ids == nil {
		if ids, all, err = c.Population(ctx, req.Subject, req.Practitioner); err != nil {
			return measure.Stats{}, err
		}
	}
	src := patientsource.NewStore(c.st)
	if !all {
		src.Patients = ids
	}
	ropts := report.Options{Period: ReportPeriod(req.Period), Date: time.Now(), Reporter: req.Reporter, ReporterDisplay: req.ReporterDisplay}
	run := measure.RunOptions{Period: req.Period, Workers: req.Workers}
	logFailure := func(r *measure.PatientResult) {
		if r.Err != nil {
			c.log.Warn("patient evaluation failed", "measure", m.Def.ID, "patient", r.PatientID, "error", r.Err)
		}
	}
	switch req.ReportType {
	case report.TypeIndividual:
		return m.Run(ctx, src, run, func(r *measure.PatientResult) error {
			logFailure(r)
			return out(report.Individual(m.Def, ropts, r))
		})
	case report.TypeSubjectList:
		listID := report.NewID()
		reports := map[string]string{}
		n := 0
		ropts.SubjectItem = func(p string) string { return "MeasureReport/" + reports[p] }
		agg := report.NewSubjectList(m.Def, ropts)
		st, err := m.Run(ctx, src, run, func(r *measure.PatientResult) error {
			logFailure(r)
			agg.Add(r)
			ind := report.Individual(m.Def, ropts, r)
			n++
			ind.ID = fmt.Sprintf("%s-%d", listID, n)
			reports[r.PatientID] = ind.ID
			return out(ind)
		})
		if err != nil {
			return st, err
		}
		rep := agg.Report()
		rep.ID = listID
		return st, out(rep)
	case report.TypeSummary:
		agg := report.NewSummary(m.Def, ropts)
		st, err := m.Run(ctx, src, run, func(r *measure.PatientResult) error {
			logFailure(r)
			agg.Add(r)
			return nil
		})
		if err != nil {
			return st, err
		}
		return st, out(agg.Report())
	}
	return measure.Stats{}, fmt.Errorf("%w: report type %q", ErrBadRequest, req.ReportType)
}

// ReportPeriod is the period as reports show it: DEQM (deqm-1) wants at
// least day precision, so year and month bounds are spelled out as the
// days they stand for.
func ReportPeriod(p measure.Period) report.Period {
	day := func(text string, y, mo, d int) string {
		if len(text) >= 10 {
			return text
		}
		return fmt.Sprintf("%04d-%02d-%02d", y, mo, d)
	}
	return report.Period{
		Start: day(p.StartText, p.Start.Year, p.Start.Month, p.Start.Day),
		End:   day(p.EndText, p.End.Year, p.End.Month, p.End.Day),
	}
}
