package equity

import (
	"errors"
	"fmt"
	"math"
)

// AnalysisOptions choose the rules and reference of an Analysis.
type AnalysisOptions struct {
	Policy   Policy
	Strategy RefStrategy // "" means RefBest
	// Benchmark is the rate for RefFixed and RefBestOrBenchmark.
	Benchmark float64
	// MuOverall makes the summary indices use the entity's overall rate as
	// μ instead of the pooled rate of the included groups.
	MuOverall bool
}

// Analysis is a stratification with its statistics.
type Analysis struct {
	Stratification
	Direction Direction
	// OverallCI is the Wilson interval of the overall rate.
	OverallCI Interval
	// Reference is valid when HasReference.
	Reference    Reference
	HasReference bool
	// Disparities is aligned with Strata; nil where the stratum is not
	// comparable (masked, small, or unknown/declined).
	Disparities []*Disparity
	// Indices is nil with fewer than two comparable strata.
	Indices *Indices
}

// Analyze assesses the strata (in place), chooses the reference and
// computes disparities and summary indices. A missing reference is not an
// error: a small population may have no comparable group.
func Analyze(s Stratification, dir Direction, opts AnalysisOptions) (Analysis, error) {
	Assess(s.Strata, opts.Policy)
	a := Analysis{Stratification: s, Direction: dir, Disparities: make([]*Disparity, len(s.Strata))}
	a.OverallCI = Wilson(s.Overall.Numerator, s.Overall.Denominator, opts.Policy.z())
	ref, err := ChooseReference(s.Strata, s.Overall, dir, opts.Strategy, opts.Benchmark)
	switch {
	case errors.Is(err, ErrNoReference):
	case err != nil:
		return Analysis{}, fmt.Errorf("equity: analyze: %w", err)
	default:
		a.Reference, a.HasReference = ref, true
		for i := range s.Strata {
			if i == ref.Stratum {
				// The reference against itself: no gap and no sampling
				// error (a two-sample interval would pretend otherwise).
				a.Disparities[i] = &Disparity{AbsGapCI: Interval{}, PValue: math.NaN(), RateRatio: 1,
					RateRatioCI: Interval{1, 1}, DisparityRatio: 1, DisparityRatioCI: Interval{1, 1}}
				continue
			}
			if s.Strata[i].Comparable() {
				d := Compare(s.Strata[i].Counts, ref, dir, opts.Policy.z())
				a.Disparities[i] = &d
			}
		}
	}
	var ov *Counts
	if opts.MuOverall {
		ov = &s.Overall
	}
	if ix, ok := ComputeIndices(s.Strata, dir, ov); ok {
		a.Indices = &ix
	}
	return a, nil
}
