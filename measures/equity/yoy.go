package equity

import "math"

// Trend labels a year-over-year change (HP2030 wording).
type Trend string

const (
	Improving   Trend = "improving"
	NoChange    Trend = "no-detectable-change"
	Worsening   Trend = "worsening"
	significant       = 0.05
)

// RateChange is the change of one group's rate between two periods (§4.5).
type RateChange struct {
	Delta float64
	// CI is the Newcombe interval of current − prior.
	CI    Interval
	Z, P  float64
	Trend Trend
}

// CompareRates tests current against prior with the pooled two-proportion
// z test; the trend accounts for the measure's direction.
func CompareRates(prior, current Counts, dir Direction, z float64) RateChange {
	if z <= 0 {
		z = Z95
	}
	c := RateChange{Delta: current.Rate() - prior.Rate()}
	c.CI = Newcombe(current.Numerator, current.Denominator, prior.Numerator, prior.Denominator, z)
	c.Z, c.P = TwoProportionZ(current.Numerator, current.Denominator, prior.Numerator, prior.Denominator)
	c.Trend = trend(dir.sign()*c.Delta, c.P)
	return c
}

// GapChange is the difference-in-differences of an absolute gap (§4.5).
type GapChange struct {
	PriorGap, CurrentGap float64
	PriorSE, CurrentSE   float64
	Delta, SE, Z, P      float64
	// Trend is Improving when the gap narrowed significantly.
	Trend Trend
}

// CompareGaps tests the change of the gap r_ref − r_g (direction-signed,
// positive = group worse) between two periods, with Wald variances and
// independence between periods (an approximation: members recur).
func CompareGaps(priorRef, priorGroup, curRef, curGroup Counts, dir Direction) GapChange {
	s := dir.sign()
	g := GapChange{
		PriorGap:   s * (priorRef.Rate() - priorGroup.Rate()),
		CurrentGap: s * (curRef.Rate() - curGroup.Rate()),
		PriorSE:    math.Sqrt(WaldVar(priorRef.Numerator, priorRef.Denominator) + WaldVar(priorGroup.Numerator, priorGroup.Denominator)),
		CurrentSE:  math.Sqrt(WaldVar(curRef.Numerator, curRef.Denominator) + WaldVar(curGroup.Numerator, curGroup.Denominator)),
	}
	g.Delta = g.CurrentGap - g.PriorGap
	g.SE = math.Hypot(g.PriorSE, g.CurrentSE)
	g.Z = g.Delta / g.SE
	g.P = TwoSidedP(g.Z)
	g.Trend = trend(-g.Delta, g.P)
	return g
}

// RatioChange is the change of a rate ratio on the log scale.
type RatioChange struct {
	Prior, Current float64
	Z, P           float64
}

// CompareRatios tests the change of the ratio group/ref between periods
// with Katz standard errors.
func CompareRatios(priorGroup, priorRef, curGroup, curRef Counts) RatioChange {
	c := RatioChange{
		Prior:   priorGroup.Rate() / priorRef.Rate(),
		Current: curGroup.Rate() / curRef.Rate(),
	}
	se := math.Hypot(KatzSE(priorGroup.Numerator, priorGroup.Denominator, priorRef.Numerator, priorRef.Denominator),
		KatzSE(curGroup.Numerator, curGroup.Denominator, curRef.Numerator, curRef.Denominator))
	c.Z = (math.Log(c.Current) - math.Log(c.Prior)) / se
	c.P = TwoSidedP(c.Z)
	return c
}

// IndexChange is the absolute and percentage change of a summary index.
type IndexChange struct {
	Prior, Current, Abs, Pct float64
}

// CompareIndex reports the change from prior to current.
func CompareIndex(prior, current float64) IndexChange {
	return IndexChange{Prior: prior, Current: current, Abs: current - prior, Pct: 100 * (current - prior) / prior}
}

// trend labels a change that is positive when things got better.
func trend(better, p float64) Trend {
	switch {
	case math.IsNaN(p) || p >= significant:
		return NoChange
	case better > 0:
		return Improving
	default:
		return Worsening
	}
}

// stratumChange is the year-over-year comparison of stratum i of a with
// the same stratum of prior, shared by the CSV and dashboard outputs so
// they can never disagree. ok is false when there is no prior period,
// the stratum is missing from it, or either period suppresses it; gap is
// nil when either period lacks a disparity with reference counts.
func stratumChange(a Analysis, i int, prior *Analysis, priorIdx map[string]int) (ps *Stratum, rate RateChange, gap *GapChange, ok bool) {
	s := &a.Strata[i]
	if prior == nil || s.Suppression() != NotSuppressed {
		return nil, RateChange{}, nil, false
	}
	pi, found := priorIdx[s.Key()]
	if !found || prior.Strata[pi].Suppression() != NotSuppressed {
		return nil, RateChange{}, nil, false
	}
	ps = &prior.Strata[pi]
	rate = CompareRates(ps.Counts, s.Counts, a.Direction, 0)
	if a.Disparities[i] != nil && prior.Disparities[pi] != nil && a.Reference.HasCounts() && prior.Reference.HasCounts() {
		gc := CompareGaps(prior.Reference.Counts, ps.Counts, a.Reference.Counts, s.Counts, a.Direction)
		gap = &gc
	}
	return ps, rate, gap, true
}

// strataIndex maps each stratum key of a (nil: none) to its index, to
// match strata across periods by value.
func strataIndex(a *Analysis) map[string]int {
	idx := map[string]int{}
	if a != nil {
		for i := range a.Strata {
			idx[a.Strata[i].Key()] = i
		}
	}
	return idx
}
