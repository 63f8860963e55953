package equity

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
)

// MeasureInput is one measure's per-patient results for an equity report.
type MeasureInput struct {
	// ID names the measure in the CSV; Canonical is its url|version for
	// MeasureReport.measure.
	ID, Version, Canonical string
	Direction              Direction
	Records                []Record
	// Prior holds the previous period's records (nil: no year-over-year,
	// unless PriorStrata is set).
	Prior []Record
	// PriorStrata are the previous period's stratifications by stratifier
	// name (e.g. "race-omb1997+language-preferred"), rebuilt from a
	// supplied prior report; used when Prior is nil.
	PriorStrata map[string]Stratification
	// Benchmark is the measure's benchmark rate (RefFixed,
	// RefBestOrBenchmark, equity attainment); 0 means none.
	Benchmark float64
}

// ReportOptions configure an equity report.
type ReportOptions struct {
	Context ReportContext
	// Stratifiers lists the stratifiers; each is one or more dimensions.
	Stratifiers [][]Dimension
	Stratify    Options
	// PriorStratify configures the prior period (ages at its end).
	PriorStratify Options
	Analysis      AnalysisOptions
	FHIR          FHIROptions
	Reporter      string
}

// MeasureReport is the equity analysis of one measure.
type MeasureReport struct {
	Input    *MeasureInput
	Analyses []Analysis
	Prior    []*Analysis // aligned with Analyses; nil entries without prior data
	// Equity is the measure's equity score inputs (attainment of the worst
	// comparable group on the first stratifier, improvement from the gap
	// change of that group when there is a prior year).
	Equity *MeasureEquity
}

// Report is an equity report over several measures.
type Report struct {
	Measures []MeasureReport
	opts     ReportOptions
}

// BuildReport stratifies and analyses every measure by every stratifier.
func BuildReport(ctx context.Context, inputs []MeasureInput, opts ReportOptions) (*Report, error) {
	if len(opts.Stratifiers) == 0 {
		return nil, fmt.Errorf("equity: report needs at least one stratifier")
	}
	r := &Report{opts: opts}
	for i := range inputs {
		in := &inputs[i]
		mr := MeasureReport{Input: in}
		ao := opts.Analysis
		if ao.Benchmark == 0 {
			ao.Benchmark = in.Benchmark
		}
		for _, dims := range opts.Stratifiers {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			a, err := Analyze(Stratify(in.Records, dims, opts.Stratify), in.Direction, ao)
			if err != nil {
				return nil, fmt.Errorf("equity: measure %s: %w", in.ID, err)
			}
			mr.Analyses = append(mr.Analyses, a)
			var prior *Analysis
			ps, supplied := in.PriorStrata[stratifierName(dims)]
			if in.Prior != nil || supplied {
				if in.Prior != nil {
					ps = Stratify(in.Prior, dims, opts.PriorStratify)
				} else {
					ps.Strata = slices.Clone(ps.Strata)
				}
				p, err := Analyze(ps, in.Direction, ao)
				if err != nil {
					return nil, fmt.Errorf("equity: measure %s prior period: %w", in.ID, err)
				}
				prior = &p
			}
			mr.Prior = append(mr.Prior, prior)
		}
		mr.Equity = measureEquity(in, mr.Analyses[0], mr.Prior[0])
		r.Measures = append(r.Measures, mr)
	}
	return r, nil
}

// measureEquity derives §6.2's per-measure equity score inputs; nil without
// a comparable group. A missing benchmark is replaced by the reference
// rate.
func measureEquity(in *MeasureInput, a Analysis, prior *Analysis) *MeasureEquity {
	worst, ok := WorstRate(a)
	b := in.Benchmark
	if b <= 0 && a.HasReference {
		// Without a benchmark the reference (by default the best group)
		// is the bar the worst group is held to.
		b = a.Reference.Rate
	}
	if !ok || b <= 0 {
		return nil
	}
	me := &MeasureEquity{Attainment: Attainment(worst, b, in.Direction)}
	if prior == nil || !a.HasReference || !prior.HasReference || !a.Reference.HasCounts() || !prior.Reference.HasCounts() {
		return me
	}
	// The gap change of the group that is worst now, where it was
	// comparable a year ago too.
	for i := range a.Strata {
		s := &a.Strata[i]
		if !s.Comparable() || s.Rate != worst {
			continue
		}
		for j := range prior.Strata {
			ps := &prior.Strata[j]
			if ps.Key() == s.Key() && ps.Comparable() {
				imp := Improvement(CompareGaps(prior.Reference.Counts, ps.Counts, a.Reference.Counts, s.Counts, in.Direction))
				me.Improvement = &imp
				return me
			}
		}
	}
	return me
}

// EquityScore is the mean equity score over the measures that have one.
func (r *Report) EquityScore() float64 {
	var ms []MeasureEquity
	for _, m := range r.Measures {
		if m.Equity != nil {
			ms = append(ms, *m.Equity)
		}
	}
	return EquityScore(ms)
}

// WriteCSV writes the tidy long table of every measure and stratifier to
// tidy and the indices table to indices, each with one header.
func (r *Report) WriteCSV(tidy, indices io.Writer) error {
	for mi, m := range r.Measures {
		rc := r.opts.Context
		rc.MeasureID, rc.MeasureVersion = m.Input.ID, m.Input.Version
		for ai, a := range m.Analyses {
			first := mi == 0 && ai == 0
			if err := writeSkippingHeader(tidy, first, func(w io.Writer) error { return WriteTidyCSV(w, rc, a, m.Prior[ai], r.opts.FHIR) }); err != nil {
				return err
			}
			if err := writeSkippingHeader(indices, first, func(w io.Writer) error { return WriteIndicesCSV(w, rc, a, m.Prior[ai]) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeSkippingHeader runs write into a buffer and copies it to w, without
// its first line unless keep.
func writeSkippingHeader(w io.Writer, keep bool, write func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return err
	}
	b := buf.Bytes()
	if !keep {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("equity: csv: %w", err)
	}
	return nil
}

// MeasureReports renders one summary MeasureReport per measure.
func (r *Report) MeasureReports() ([][]byte, error) {
	out := make([][]byte, 0, len(r.Measures))
	for _, m := range r.Measures {
		b, err := MeasureReportJSON(SummaryReport{Measure: m.Input.Canonical, PeriodStart: r.opts.Context.PeriodStart,
			PeriodEnd: r.opts.Context.PeriodEnd, Reporter: r.opts.Reporter, Direction: m.Input.Direction}, m.Analyses, r.opts.FHIR)
		if err != nil {
			return nil, fmt.Errorf("equity: measure %s: %w", m.Input.ID, err)
		}
		out = append(out, b)
	}
	return out, nil
}
