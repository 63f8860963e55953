package equity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/patientsource"
)

// Attributor names the provider a patient is attributed to on a date
// (an attribution list membership); "" when there is none.
type Attributor interface {
	AttributedProvider(ctx context.Context, patientID string, at time.Time) (string, error)
}

// RunOptions configure Run.
type RunOptions struct {
	// PeriodStart and PeriodEnd bound the measurement period (dates or
	// dateTimes, as measure.NewPeriod takes them); both are required.
	PeriodStart, PeriodEnd string
	// PriorStart and PriorEnd, when set, add a second evaluation over the
	// prior period for the year-over-year columns.
	PriorStart, PriorEnd string
	// PriorReport, instead of a prior period, supplies last period's
	// report (a Dashboard); its released counts feed the year-over-year
	// columns of the stratifiers it has.
	PriorReport *Dashboard
	// Stratifiers; nil means DefaultStratifiers.
	Stratifiers [][]Dimension
	Analysis    AnalysisOptions
	// Benchmarks by measure id, name or canonical URL; a measure without
	// one uses Analysis.Benchmark (0: none).
	Benchmarks map[string]float64
	// Corrections of published improvement notations; nil means
	// KnownDirectionCorrections, an empty slice none.
	Corrections []DirectionCorrection
	// EquityWeight of the composite; 0 means DefaultEquityWeight.
	EquityWeight float64
	// SVI is the social vulnerability table (svi-quartile stratifier and
	// the equity pool); nil disables both.
	SVI SVITable
	// HighSVIThreshold: 0 means HighSVIThreshold.
	HighSVIThreshold float64
	// PoolAmount is the equity pool split across providers (0: weights
	// and shares only).
	PoolAmount float64
	Hierarchy  RaceHierarchy
	// Attribution, when set, names each patient's attributed provider at
	// the period end; without an assignment (or without Attribution) the
	// Patient's first generalPractitioner is used.
	Attribution Attributor
	AgeBands    []int
	// Workers evaluating patients in parallel; 0 means GOMAXPROCS.
	Workers              int
	EntityID, EntityType string
	Reporter             string
	FHIR                 FHIROptions
	// Now stamps the report; zero means time.Now().
	Now time.Time
}

// DefaultStratifiers are race, ethnicity, language, sex, payer and age
// band: the REL dimensions HCP-LAN asks for plus the usual three.
func DefaultStratifiers() [][]Dimension {
	return [][]Dimension{{DimRace}, {DimEthnicity}, {DimLanguage}, {DimSex}, {DimPayer}, {DimAgeBand}}
}

// Errors of Run's inputs.
var (
	ErrNoMeasures = errors.New("equity: no measure to report")
	ErrPeriod     = errors.New("equity: invalid period")
)

// Result is an equity report over a population.
type Result struct {
	Report                 *Report
	PeriodStart, PeriodEnd string
	PriorStart, PriorEnd   string
	// Patients evaluated; Failed of them could not be evaluated for at
	// least one measure (they are left out of that measure).
	Patients, Failed int
	// Measures is aligned with Report.Measures.
	Measures []MeasureResult
	// Notes explain choices the data forced (direction corrections,
	// skipped groups).
	Notes []string
	// Quality (0–100) is the mean of the measures' quality points, Equity
	// (0–100) the equity score, Composite = (1 − w)·Quality + w·Equity;
	// NaN when not computable.
	Quality, Equity, EquityWeight, Composite float64
	// Pool is the equity-pool allocation (nil without an SVI table).
	Pool      *Pool
	Generated time.Time
	Elapsed   time.Duration
}

// MeasureResult is what Run adds to one measure's equity analysis.
type MeasureResult struct {
	Title, GroupID string
	// DirectionNote explains a corrected improvement notation.
	DirectionNote string
	// BenchmarkSource is "supplied" or "reference" (the best group's rate
	// stands in for a missing benchmark in the equity attainment).
	BenchmarkSource string
	// Quality points (0–100): achievement vs the benchmark or
	// improvement vs the prior year, whichever is higher (§6.2); without a
	// benchmark the performance rate ×100.
	Quality float64
}

// Pool is an equity-pool allocation across attributed providers (§3.3).
type Pool struct {
	Threshold, Amount float64
	Providers         []PoolEntry
}

// PoolEntry is one provider's part of the pool: HighSVI of its Members live
// in areas with SVI ≥ Threshold; Score is its mean performance (0–1) over
// the measures; Weight = HighSVI·Score, Share = Weight/ΣWeight.
type PoolEntry struct {
	ID                           string
	Members, HighSVI             int
	Score, Weight, Share, Amount float64
}

type target struct {
	mi  int // index into the measures
	g   *measure.Group
	in  int // index into inputs
	res MeasureResult
}

// Run evaluates every measure over the population of src in one pass per
// patient (each patient's compartment is read once: its attributes and
// every measure, for the current and the prior period, come from it, on
// Workers goroutines each owning its own engine sessions), then stratifies,
// analyses and scores the results. Only proportion groups are reported;
// episode-based groups count episodes.
func Run(ctx context.Context, src patientsource.Source, ms []*measure.Measure, opts RunOptions) (*Result, error) {
	began := time.Now()
	period, err := measure.NewPeriod(opts.PeriodStart, opts.PeriodEnd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPeriod, err)
	}
	end, err := PeriodEndTime(opts.PeriodEnd)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPeriod, err)
	}
	var prior *measure.Period
	var priorEnd time.Time
	if opts.PriorReport != nil && (opts.PriorStart != "" || opts.PriorEnd != "") {
		return nil, fmt.Errorf("%w: give a prior period or a prior report, not both", ErrPriorReport)
	}
	if opts.PriorStart != "" || opts.PriorEnd != "" {
		p, err := measure.NewPeriod(opts.PriorStart, opts.PriorEnd)
		if err != nil {
			return nil, fmt.Errorf("%w: prior period: %w", ErrPeriod, err)
		}
		if priorEnd, err = PeriodEndTime(opts.PriorEnd); err != nil {
			return nil, fmt.Errorf("%w: prior period: %w", ErrPeriod, err)
		}
		prior = &p
	}
	corrections := opts.Corrections
	if corrections == nil {
		corrections = KnownDirectionCorrections()
	}
	res := &Result{PeriodStart: opts.PeriodStart, PeriodEnd: opts.PeriodEnd, PriorStart: opts.PriorStart, PriorEnd: opts.PriorEnd,
		Generated: opts.Now}
	if pr := opts.PriorReport; pr != nil {
		if pr.Period.End >= opts.PeriodStart {
			return nil, fmt.Errorf("%w: its period (%s to %s) does not precede %s", ErrPriorReport, pr.Period.Start, pr.Period.End, opts.PeriodStart)
		}
		res.PriorStart, res.PriorEnd = pr.Period.Start, pr.Period.End
	}
	if res.Generated.IsZero() {
		res.Generated = time.Now()
	}
	var targets []target
	var inputs []MeasureInput
	for mi, m := range ms {
		def := m.Def
		for gi := range def.Groups {
			g := &def.Groups[gi]
			if g.Scoring != measure.Proportion {
				res.Notes = append(res.Notes, fmt.Sprintf("%s group %s: %s scoring is not stratified (proportion groups only)", def.Name, g.ID, g.Scoring))
				continue
			}
			dir, note := ResolveDirection(def, g, corrections)
			if note != "" {
				res.Notes = append(res.Notes, note)
			}
			id := def.Name
			if id == "" {
				id = def.ID
			}
			if len(def.Groups) > 1 {
				id += "#" + cmpOr(g.ID, fmt.Sprint(gi+1))
			}
			in := MeasureInput{ID: id, Version: def.Version, Canonical: def.Canonical(), Direction: dir}
			src := "supplied"
			if b, ok := BenchmarkFor(opts.Benchmarks, def); ok {
				in.Benchmark = b
			} else if opts.Analysis.Benchmark > 0 {
				in.Benchmark = opts.Analysis.Benchmark
			} else {
				src = "reference"
			}
			if prior != nil {
				in.Prior = []Record{}
			}
			if opts.PriorReport != nil {
				ps, err := priorStrata(opts.PriorReport, in.ID, in.Canonical)
				if err != nil {
					return nil, err
				}
				if ps == nil {
					res.Notes = append(res.Notes, fmt.Sprintf("%s: not in the supplied prior report; no year-over-year", in.ID))
				}
				in.PriorStrata = ps
			}
			targets = append(targets, target{mi: mi, g: g, in: len(inputs),
				res: MeasureResult{Title: cmpOr(def.Title, def.Name), GroupID: g.ID, DirectionNote: note, BenchmarkSource: src}})
			inputs = append(inputs, in)
		}
	}
	if len(targets) == 0 {
		return nil, ErrNoMeasures
	}
	stratifiers := opts.Stratifiers
	if stratifiers == nil {
		stratifiers = DefaultStratifiers()
	}

	ev := evaluator{ms: ms, targets: targets, period: period, prior: prior, end: end, opts: &opts}
	// The equity pool counts every attributed member, measured or not.
	var members []*Attributes
	if err := ev.run(ctx, src, func(o *patientOutcome) {
		res.Patients++
		if opts.SVI != nil && o.attrs != nil {
			members = append(members, o.attrs)
		}
		if o.failed {
			res.Failed++
		}
		for k := range targets {
			in := &inputs[targets[k].in]
			in.Records = append(in.Records, o.cur[k]...)
			if prior != nil {
				in.Prior = append(in.Prior, o.prior[k]...)
			}
		}
	}); err != nil {
		return nil, err
	}

	ageOpts := Options{AgeAt: end, AgeBands: opts.AgeBands, SVI: opts.SVI}
	priorOpts := ageOpts
	priorOpts.AgeAt = priorEnd
	rep, err := BuildReport(ctx, inputs, ReportOptions{
		Context:     ReportContext{EntityID: opts.EntityID, EntityType: opts.EntityType, PeriodStart: opts.PeriodStart, PeriodEnd: opts.PeriodEnd},
		Stratifiers: stratifiers, Stratify: ageOpts, PriorStratify: priorOpts, Analysis: opts.Analysis,
		FHIR: opts.FHIR, Reporter: opts.Reporter,
	})
	if err != nil {
		return nil, err
	}
	res.Report = rep
	for _, t := range targets {
		res.Measures = append(res.Measures, t.res)
	}
	res.score(opts)
	if opts.SVI != nil {
		res.Pool = pool(members, inputs, opts)
	}
	res.Elapsed = time.Since(began)
	return res, nil
}

// score fills the quality points, equity score and composite.
func (r *Result) score(opts RunOptions) {
	w := opts.EquityWeight
	if w == 0 {
		w = DefaultEquityWeight
	}
	r.EquityWeight = w
	var q float64
	n := 0
	for i := range r.Report.Measures {
		m := &r.Report.Measures[i]
		in := m.Input
		o := m.Analyses[0].Overall
		if o.Denominator == 0 {
			r.Measures[i].Quality = math.NaN()
			continue
		}
		rate := o.Rate()
		pts := 100 * performance(rate, in.Direction)
		if in.Benchmark > 0 {
			prior := -1.0
			if p := m.Prior[0]; p != nil && p.Overall.Denominator > 0 {
				prior = p.Overall.Rate()
			}
			pts = QualityPoints(rate, prior, in.Benchmark, 0, in.Direction)
		}
		r.Measures[i].Quality = pts
		q += pts
		n++
	}
	r.Quality = math.NaN()
	if n > 0 {
		r.Quality = q / float64(n)
	}
	r.Equity = r.Report.EquityScore()
	r.Composite = math.NaN()
	if !math.IsNaN(r.Quality) && !math.IsNaN(r.Equity) {
		if c, err := Composite(r.Quality, r.Equity, w); err == nil {
			r.Composite = c
		}
	}
}

// performance is a rate on the higher-is-better scale.
func performance(rate float64, dir Direction) float64 {
	if dir == Decrease {
		return 1 - rate
	}
	return rate
}

// pool allocates the equity pool over the providers members are
// attributed to: high-SVI members counted over every member, scores from
// the current period's records.
func pool(members []*Attributes, inputs []MeasureInput, opts RunOptions) *Pool {
	thr := opts.HighSVIThreshold
	if thr <= 0 {
		thr = HighSVIThreshold
	}
	type prov struct {
		members, highSVI int
		counts           []Counts
	}
	provs := map[string]*prov{}
	get := func(id string) *prov {
		p := provs[id]
		if p == nil {
			p = &prov{counts: make([]Counts, len(inputs))}
			provs[id] = p
		}
		return p
	}
	for _, a := range members {
		if a.Provider == "" {
			continue
		}
		p := get(a.Provider)
		p.members++
		if v, ok := sviOf(opts.SVI, a); ok && v >= thr {
			p.highSVI++
		}
	}
	for k := range inputs {
		for i := range inputs[k].Records {
			rec := &inputs[k].Records[i]
			if a := rec.Attributes; a != nil && a.Provider != "" {
				rec.add(&get(a.Provider).counts[k])
			}
		}
	}
	ids := make([]string, 0, len(provs))
	for id := range provs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := &Pool{Threshold: thr, Amount: opts.PoolAmount}
	var claims []PoolProvider
	for _, id := range ids {
		p := provs[id]
		e := PoolEntry{ID: id, Members: p.members, HighSVI: p.highSVI}
		var s float64
		n := 0
		for k, c := range p.counts {
			if c.Denominator > 0 {
				s += performance(c.Rate(), inputs[k].Direction)
				n++
			}
		}
		if n > 0 {
			e.Score = s / float64(n)
		}
		out.Providers = append(out.Providers, e)
		claims = append(claims, PoolProvider{ID: id, HighSVI: e.HighSVI, Score: e.Score})
	}
	var total float64
	shares := AllocatePool(opts.PoolAmount, claims)
	for _, s := range shares {
		total += s.Weight
	}
	for i, s := range shares {
		out.Providers[i].Weight, out.Providers[i].Amount = s.Weight, s.Amount
		if total > 0 {
			out.Providers[i].Share = s.Weight / total
		}
	}
	return out
}

// sviOf is the SVI of a member's area, looked up by GeoKeys.
func sviOf(t SVITable, a *Attributes) (float64, bool) {
	for _, k := range a.GeoKeys() {
		if v, ok := t[k]; ok && k != "" && v >= 0 {
			return v, true
		}
	}
	return 0, false
}

// BenchmarkFor looks a measure's benchmark up in b by id, name, URL or
// canonical (url|version).
func BenchmarkFor(b map[string]float64, def *measure.Definition) (float64, bool) {
	for _, k := range []string{def.ID, def.Name, def.URL, def.Canonical()} {
		if v, ok := b[k]; ok && k != "" {
			return v, true
		}
	}
	return 0, false
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// PeriodEndTime is the last instant a period end bound covers: a date
// (YYYY, YYYY-MM, YYYY-MM-DD) is whole units, so it is the start of the
// next unit minus a nanosecond; a dateTime is itself.
func PeriodEndTime(s string) (time.Time, error) {
	for _, l := range []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{time.DateOnly, func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
	} {
		if len(s) == len(l.layout) {
			t, err := time.Parse(l.layout, s)
			if err != nil {
				return time.Time{}, fmt.Errorf("period end %q: %w", s, err)
			}
			return l.next(t).Add(-time.Nanosecond), nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("period end %q: want a date or dateTime with offset", s)
	}
	return t, nil
}

// patientOutcome is one patient's records per target.
type patientOutcome struct {
	attrs      *Attributes
	cur, prior [][]Record
	failed     bool
}

type evaluator struct {
	ms      []*measure.Measure
	targets []target
	period  measure.Period
	prior   *measure.Period
	end     time.Time
	opts    *RunOptions
}

// run evaluates the population on Workers goroutines; collect is called
// from the calling goroutine, in no particular order.
func (e *evaluator) run(ctx context.Context, src patientsource.Source, collect func(*patientOutcome)) error {
	workers := e.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan *patientsource.Patient, workers*2)
	results := make(chan *patientOutcome, workers*2)
	var srcErr error
	go func() {
		defer close(jobs)
		srcErr = src.Each(ctx, func(p *patientsource.Patient) error {
			select {
			case jobs <- p:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cur := make([]*measure.Session, len(e.ms))
			var pri []*measure.Session
			for i, m := range e.ms {
				cur[i] = m.NewSession(e.period)
			}
			if e.prior != nil {
				pri = make([]*measure.Session, len(e.ms))
				for i, m := range e.ms {
					pri[i] = m.NewSession(*e.prior)
				}
			}
			for p := range jobs {
				o, err := e.one(ctx, p, cur, pri)
				if err != nil {
					cancel(err)
					return
				}
				select {
				case results <- o:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	for o := range results {
		collect(o)
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if srcErr != nil {
		return fmt.Errorf("equity: reading the population: %w", srcErr)
	}
	return nil
}

// one evaluates every measure for one patient.
func (e *evaluator) one(ctx context.Context, p *patientsource.Patient, cur, pri []*measure.Session) (*patientOutcome, error) {
	o := &patientOutcome{cur: make([][]Record, len(e.targets))}
	a, err := CompartmentAttributes(p, e.opts.Hierarchy, e.end)
	if err != nil {
		o.failed = true
		return o, nil
	}
	if e.opts.Attribution != nil {
		prov, err := e.opts.Attribution.AttributedProvider(ctx, p.ID, e.end)
		if err != nil {
			return nil, fmt.Errorf("equity: attribution of patient %s: %w", p.ID, err)
		}
		if prov != "" {
			a.Provider = prov
		}
	}
	attrs := &a
	o.attrs = attrs
	eval := func(sessions []*measure.Session, out [][]Record) {
		results := make([]*measure.PatientResult, len(e.ms))
		for k, t := range e.targets {
			if results[t.mi] == nil {
				results[t.mi] = sessions[t.mi].Evaluate(ctx, p)
			}
			r := results[t.mi]
			if r.Err != nil {
				o.failed = true
				continue
			}
			recs, err := AppendRecords(nil, t.g, r, attrs)
			if err != nil {
				o.failed = true
				continue
			}
			out[k] = recs
		}
	}
	eval(cur, o.cur)
	if pri != nil {
		o.prior = make([][]Record, len(e.targets))
		eval(pri, o.prior)
	}
	return o, nil
}

// ParseStratifier reads one stratifier: dimension codes or their short
// names (race, ethnicity, race-ethnicity, language, interpreter, sex,
// payer, age-band, disability, sexual-orientation, gender-identity,
// county, zip, svi, provider) joined by "+" (a cross-classification; a
// space, what an unescaped "+" in a query decodes to, works too).
func ParseStratifier(s string) ([]Dimension, error) {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '+' || r == ' ' })
	if len(parts) == 0 {
		return nil, fmt.Errorf("equity: empty stratifier")
	}
	var out []Dimension
	for _, p := range parts {
		d, ok := dimensionAliases[p]
		if !ok {
			var err error
			if d, err = ParseDimension(p); err != nil {
				return nil, err
			}
		}
		if slices.Contains(out, d) {
			return nil, fmt.Errorf("equity: stratifier %q repeats %s", s, d)
		}
		out = append(out, d)
	}
	return out, nil
}

var dimensionAliases = map[string]Dimension{
	"race": DimRace, "ethnicity": DimEthnicity, "race-ethnicity": DimRaceEthnicity, "language": DimLanguage,
	"interpreter": DimInterpreter, "svi": DimSVI, "provider": DimProvider,
}
