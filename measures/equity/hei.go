package equity

import (
	"math"
	"slices"
)

// HEIContract is one contract's input to the Health Equity Index
// simulation (§3.2): its rates among enrollees with social risk factors,
// one per measure (NaN where the contract has no score), and the share of
// its enrollees with an SRF.
type HEIContract struct {
	ID         string
	Rates      []float64
	SRFPercent float64
}

// HEIResult is one contract's index and reward.
type HEIResult struct {
	ID     string
	Points []int // +1 top third, 0 middle, −1 bottom third; 0 where no score
	// HEI is the weighted mean of the points over scored measures; NaN
	// when the contract has scores on fewer than half of the measures.
	HEI    float64
	Reward float64
}

// SimulateHEI computes the MA Star Ratings Health Equity Index as a
// simulation (the reward was not implemented for 2027; equity.md §3.2
// marks the arithmetic as reconstructed). Per measure, contracts are cut
// into thirds at the 33⅓ and 66⅔ percentiles of the scored contracts
// (higher is better unless dirs says Decrease); weights are the Star
// measure weights. The reward is 0.4·HEI for contracts at or above the
// median SRF share, 0.2·HEI from half the median, else 0, and never
// negative.
func SimulateHEI(cs []HEIContract, weights []float64, dirs []Direction) []HEIResult {
	m := len(weights)
	lo, hi := make([]float64, m), make([]float64, m)
	for k := 0; k < m; k++ {
		var xs []float64
		for _, c := range cs {
			if k < len(c.Rates) && !math.IsNaN(c.Rates[k]) {
				xs = append(xs, c.Rates[k])
			}
		}
		if len(xs) == 0 {
			lo[k], hi[k] = math.NaN(), math.NaN()
			continue
		}
		slices.Sort(xs)
		lo[k], hi[k] = quantile(xs, 1.0/3), quantile(xs, 2.0/3)
	}
	srf := make([]float64, len(cs))
	for i, c := range cs {
		srf[i] = c.SRFPercent
	}
	slices.Sort(srf)
	median := math.NaN()
	if len(srf) > 0 {
		median = quantile(srf, 0.5)
	}
	out := make([]HEIResult, len(cs))
	for i, c := range cs {
		r := HEIResult{ID: c.ID, Points: make([]int, m)}
		var sw, sp float64
		scored := 0
		for k := 0; k < m; k++ {
			if k >= len(c.Rates) || math.IsNaN(c.Rates[k]) || math.IsNaN(lo[k]) {
				continue
			}
			v := c.Rates[k]
			up, down := v > hi[k], v < lo[k]
			if k < len(dirs) && dirs[k] == Decrease {
				up, down = v < lo[k], v > hi[k]
			}
			switch {
			case up:
				r.Points[k] = 1
			case down:
				r.Points[k] = -1
			}
			sw += weights[k]
			sp += weights[k] * float64(r.Points[k])
			scored++
		}
		r.HEI = math.NaN()
		if 2*scored >= m && sw > 0 {
			r.HEI = sp / sw
		}
		switch {
		case math.IsNaN(r.HEI) || r.HEI <= 0:
		case c.SRFPercent >= median:
			r.Reward = 0.4 * r.HEI
		case c.SRFPercent >= median/2:
			r.Reward = 0.2 * r.HEI
		}
		out[i] = r
	}
	return out
}

// HESSInput is one SRF group's two-year performance on one measure in one
// plan, with the national distributions the HESS standardises against.
type HESSInput struct {
	GroupPrior, GroupCurrent         float64
	ReferencePrior, ReferenceCurrent float64
	// National level of the group's current score (mean, sd).
	NationalMean, NationalSD float64
	// National distribution of within-plan gap closure (mean, sd).
	WithinPlanMean, WithinPlanSD float64
	// National change of the group, and the sd of the benchmarked
	// improvement across plans.
	NationalChange, BenchmarkedSD float64
}

// HESSScore holds the standardised components (§3.1, reconstruction).
type HESSScore struct {
	CrossSectional, WithinPlan, Benchmarked float64
	Improvement, HESS                       float64
}

// HESS scores one group and measure: the cross-sectional z, within-plan
// gap-closure z and nationally benchmarked improvement z, improvement as
// the mean of the last two and HESS_z as the mean of level and
// improvement. Averaging across measures and groups is the caller's.
func HESS(in HESSInput) HESSScore {
	var s HESSScore
	s.CrossSectional = (in.GroupCurrent - in.NationalMean) / in.NationalSD
	wp := (in.GroupCurrent - in.GroupPrior) - (in.ReferenceCurrent - in.ReferencePrior)
	s.WithinPlan = (wp - in.WithinPlanMean) / in.WithinPlanSD
	nb := (in.GroupCurrent - in.GroupPrior) - in.NationalChange
	s.Benchmarked = nb / in.BenchmarkedSD
	s.Improvement = (s.WithinPlan + s.Benchmarked) / 2
	s.HESS = (s.CrossSectional + s.Improvement) / 2
	return s
}
