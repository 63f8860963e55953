package equity

import (
	"cmp"
	"errors"
	"fmt"
	"math"
)

// RefStrategy chooses the reference a disparity is measured against (§1.2).
type RefStrategy string

const (
	// RefBest is the most favourable comparable group (HCP-LAN default).
	RefBest RefStrategy = "best"
	// RefLargest is the comparable group with the largest denominator.
	RefLargest RefStrategy = "largest"
	// RefOverall is the entity's total rate, all members included.
	RefOverall RefStrategy = "overall"
	// RefFixed is a supplied benchmark rate.
	RefFixed RefStrategy = "fixed"
	// RefBestOrBenchmark is the more favourable of RefBest and RefFixed.
	RefBestOrBenchmark RefStrategy = "best-or-benchmark"
)

// ErrNoReference is returned when no comparable stratum exists for a
// group-based reference strategy.
var ErrNoReference = errors.New("equity: no comparable stratum for the reference")

// Reference is the chosen comparison point.
type Reference struct {
	Strategy RefStrategy
	// Stratum indexes the reference stratum, -1 when the reference is the
	// overall rate or a benchmark.
	Stratum int
	Rate    float64
	// Counts of the reference when it is a group or the overall rate;
	// zero for a benchmark (which has no sampling error).
	Counts Counts
}

// HasCounts reports whether the reference carries sampling error.
func (r Reference) HasCounts() bool { return r.Counts.Denominator > 0 }

// ChooseReference picks the reference among strata (already Assessed).
// overall is the entity total; benchmark is used by RefFixed and
// RefBestOrBenchmark. Ties for best go to the larger denominator, then the
// lexically smaller key.
func ChooseReference(strata []Stratum, overall Counts, dir Direction, strategy RefStrategy, benchmark float64) (Reference, error) {
	if strategy == "" {
		strategy = RefBest
	}
	pick := func(less func(a, b *Stratum) bool) (Reference, error) {
		best := -1
		for i := range strata {
			if !strata[i].Comparable() {
				continue
			}
			if best < 0 || less(&strata[i], &strata[best]) {
				best = i
			}
		}
		if best < 0 {
			return Reference{}, ErrNoReference
		}
		return Reference{Strategy: strategy, Stratum: best, Rate: strata[best].Rate, Counts: strata[best].Counts}, nil
	}
	tie := func(a, b *Stratum) bool {
		return cmp.Or(cmp.Compare(b.Denominator, a.Denominator), cmp.Compare(a.Key(), b.Key())) < 0
	}
	bestGroup := func() (Reference, error) {
		return pick(func(a, b *Stratum) bool {
			if a.Rate != b.Rate {
				return dir.better(a.Rate, b.Rate)
			}
			return tie(a, b)
		})
	}
	switch strategy {
	case RefBest:
		return bestGroup()
	case RefLargest:
		return pick(tie)
	case RefOverall:
		if overall.Denominator <= 0 {
			return Reference{}, ErrNoReference
		}
		return Reference{Strategy: strategy, Stratum: -1, Rate: overall.Rate(), Counts: overall}, nil
	case RefFixed:
		return Reference{Strategy: strategy, Stratum: -1, Rate: benchmark}, nil
	case RefBestOrBenchmark:
		ref, err := bestGroup()
		if err != nil || !dir.better(ref.Rate, benchmark) {
			return Reference{Strategy: strategy, Stratum: -1, Rate: benchmark}, nil
		}
		ref.Strategy = strategy
		return ref, nil
	}
	return Reference{}, fmt.Errorf("equity: unknown reference strategy %q", strategy)
}

// Disparity compares one stratum with the reference (§1.1, §4.3, §4.4).
type Disparity struct {
	// AbsGap = s·(r_ref − r_g): positive means the group is worse.
	AbsGap float64
	// AbsGapCI is the Newcombe interval of AbsGap (a Wilson-based interval
	// against a benchmark, which has no sampling error).
	AbsGapCI Interval
	// PValue of the pooled two-proportion z test (NaN for a benchmark).
	PValue float64
	// RateRatio = r_g / r_ref with its Katz interval.
	RateRatio   float64
	RateRatioCI Interval
	// DisparityRatio is the ratio on the adverse-event scale (≥ 1 means
	// worse), with its Katz interval on adverse counts.
	DisparityRatio   float64
	DisparityRatioCI Interval
	// RelDiffPct = 100·(DisparityRatio − 1).
	RelDiffPct float64
	// Significant: AbsGapCI excludes zero.
	Significant bool
}

// Compare measures stratum g against ref for a measure with direction dir.
func Compare(g Counts, ref Reference, dir Direction, z float64) Disparity {
	if z <= 0 {
		z = Z95
	}
	s := dir.sign()
	rg := g.Rate()
	d := Disparity{
		AbsGap:         s * (ref.Rate - rg),
		RateRatio:      rg / ref.Rate,
		DisparityRatio: dir.adverse(rg) / dir.adverse(ref.Rate),
		PValue:         math.NaN(),
	}
	d.RelDiffPct = 100 * (d.DisparityRatio - 1)
	nan := Interval{math.NaN(), math.NaN()}
	d.RateRatioCI, d.DisparityRatioCI = nan, nan
	if ref.HasCounts() {
		// For RefOverall the group is part of the total, so treating the
		// two as independent makes the interval conservative.
		rc := ref.Counts
		ci := Newcombe(rc.Numerator, rc.Denominator, g.Numerator, g.Denominator, z)
		d.AbsGapCI = signed(ci, s)
		_, d.PValue = TwoProportionZ(rc.Numerator, rc.Denominator, g.Numerator, g.Denominator)
		if _, ci, ok := Katz(g.Numerator, g.Denominator, rc.Numerator, rc.Denominator, z); ok {
			d.RateRatioCI = ci
		}
		ga, ra := g.Numerator, rc.Numerator
		if dir == Increase {
			ga, ra = g.Denominator-g.Numerator, rc.Denominator-rc.Numerator
		}
		if _, ci, ok := Katz(ga, g.Denominator, ra, rc.Denominator, z); ok {
			d.DisparityRatioCI = ci
		}
	} else {
		w := Wilson(g.Numerator, g.Denominator, z)
		d.AbsGapCI = signed(Interval{ref.Rate - w.High, ref.Rate - w.Low}, s)
	}
	d.Significant = d.AbsGapCI.Low > 0 || d.AbsGapCI.High < 0
	return d
}

func signed(ci Interval, s float64) Interval {
	if s < 0 {
		return Interval{-ci.High, -ci.Low}
	}
	return ci
}
