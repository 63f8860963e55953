package caregaps

import (
	"context"
	"encoding/json"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/patientsource"
	"github.com/equitas/equitas/store"
)

// Options configure a Service.
type Options struct {
	// Reporter is the Organization reference that computes the gaps
	// (MeasureReport.reporter, Composition.author); DEQM requires one.
	// Default "Organization/equitas".
	Reporter string
	// Notations override improvementNotation per Measure url|version or
	// url (increase | decrease); see ResolveNotation.
	Notations map[string]string
	// Workers is the number of patients evaluated at once (0: GOMAXPROCS).
	Workers int
	Logger  *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Service computes gaps in care over a store.
type Service struct {
	st       store.Store
	compiler Compiler
	opts     Options
	log      *slog.Logger
	// warned holds the canonicals whose contradictory notation was logged,
	// so each is reported once, not on every request.
	warned sync.Map
}

// New returns a Service reading patients and Measures from st and
// compiled measures from c.
func New(st store.Store, c Compiler, opts Options) *Service {
	if opts.Reporter == "" {
		opts.Reporter = "Organization/equitas"
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, compiler: c, opts: opts, log: log}
}

// GroupGap is the gap status of one proportion group for one patient.
type GroupGap struct {
	Group  *measure.Group
	Status measure.GapStatus
	Reason string
}

// MeasureGaps is one patient's result for one measure.
type MeasureGaps struct {
	Measure *Selected
	Result  *measure.PatientResult
	// Groups holds the proportion groups, in Measure order.
	Groups []GroupGap
}

// PatientGaps is one patient's gaps over the selected measures.
type PatientGaps struct {
	Patient  *patientsource.Patient
	Measures []MeasureGaps
}

// Reported returns the groups whose status the request asked for, per
// measure (measures with none are left out).
func (pg *PatientGaps) Reported(req *Request) []MeasureGaps {
	var out []MeasureGaps
	for _, mg := range pg.Measures {
		keep := mg
		keep.Groups = nil
		for _, g := range mg.Groups {
			if req.Wants(g.Status) {
				keep.Groups = append(keep.Groups, g)
			}
		}
		if len(keep.Groups) > 0 {
			out = append(out, keep)
		}
	}
	return out
}

// Stats count a run.
type Stats struct {
	Patients int // evaluated
	Failed   int // patients with an evaluation error in some measure
}

// Run evaluates every patient of ids against every measure in parallel
// (each worker keeps one engine session per measure) and calls fn with
// each patient's gaps in ids order, from the calling goroutine. Patients
// listed but absent from the store are skipped.
func (s *Service) Run(ctx context.Context, req *Request, measures []*Selected, ids []string, fn func(*PatientGaps) error) (Stats, error) {
	src := patientsource.NewStore(s.st)
	src.Patients = append(make([]string, 0, len(ids)), ids...)
	period := req.Period()
	var st Stats
	err := patientsource.Parallel(ctx, src, s.opts.Workers, func() func(context.Context, *patientsource.Patient) *PatientGaps {
		sessions := make([]*measure.Session, len(measures))
		for i, m := range measures {
			sessions[i] = m.Measure.NewSession(period)
		}
		return func(ctx context.Context, p *patientsource.Patient) *PatientGaps {
			pg := &PatientGaps{Patient: p}
			for i, m := range measures {
				pg.Measures = append(pg.Measures, judge(m, sessions[i].Evaluate(ctx, p)))
			}
			return pg
		}
	}, func(pg *PatientGaps) error {
		st.Patients++
		for _, mg := range pg.Measures {
			if mg.Result.Err != nil {
				st.Failed++
				s.log.Warn("care-gaps: evaluation failed", "patient", pg.Patient.ID, "measure", mg.Measure.ID, "error", mg.Result.Err)
				break
			}
		}
		return fn(pg)
	})
	return st, err
}

// judge derives the gap status of each proportion group.
func judge(m *Selected, r *measure.PatientResult) MeasureGaps {
	mg := MeasureGaps{Measure: m, Result: r}
	for gi := range m.Def.Groups {
		g := &m.Def.Groups[gi]
		if g.Scoring != measure.Proportion {
			continue
		}
		var gr *measure.GroupResult
		if r.Err == nil && gi < len(r.Groups) {
			gr = &r.Groups[gi]
		}
		status := measure.Gap(g, gr)
		mg.Groups = append(mg.Groups, GroupGap{Group: g, Status: status, Reason: reason(g, gr, status)})
	}
	return mg
}

// reason explains a status in words a provider portal can show.
func reason(g *measure.Group, gr *measure.GroupResult, status measure.GapStatus) string {
	if gr == nil {
		return "not evaluated (evaluation error)"
	}
	inverse := g.ImprovementNotation == "decrease"
	switch status {
	case measure.OpenGap:
		if inverse {
			return "in numerator of an inverse measure (improvementNotation decrease)"
		}
		return "in denominator, not in numerator"
	case measure.ClosedGap:
		if inverse {
			return "in denominator, not in numerator of an inverse measure (improvementNotation decrease)"
		}
		return "in numerator"
	}
	switch {
	case gr.Count(measure.InitialPopulation) == 0:
		return "not in initial population"
	case gr.Count(measure.Denominator) == 0:
		return "not in denominator"
	case gr.Count(measure.DenominatorExclusion) > 0:
		return "denominator exclusion"
	case gr.Count(measure.DenominatorException) > 0:
		return "denominator exception"
	case gr.Count(measure.NumeratorExclusion) > 0:
		return "numerator exclusion"
	}
	return "not applicable"
}

// patientJSON returns the patient's Patient resource.
func patientJSON(p *patientsource.Patient) json.RawMessage {
	if rs := p.Resources["Patient"]; len(rs) > 0 {
		return rs[0]
	}
	return nil
}
