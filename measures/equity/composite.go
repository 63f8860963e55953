package equity

import (
	"errors"
	"math"
)

// DefaultEquityWeight is the HCP-LAN minimum share of health equity in a
// quality composite.
const DefaultEquityWeight = 0.20

// Attainment scores the worst comparable group against a benchmark on a
// 0–100 scale (§6.2): 100·min(1, r_worst/b) for increase measures,
// 100·min(1, b/r_worst) for decrease measures.
func Attainment(worst, benchmark float64, dir Direction) float64 {
	if dir == Decrease {
		if worst <= 0 {
			return 100
		}
		return 100 * math.Min(1, benchmark/worst)
	}
	if benchmark <= 0 {
		return 100
	}
	return 100 * math.Min(1, worst/benchmark)
}

// Improvement scores gap closure (§6.2): 100 if the gap to the reference
// shrank significantly, 50 if it shrank without significance, else 0.
func Improvement(g GapChange) float64 {
	switch {
	case g.Delta < 0 && g.P < significant:
		return 100
	case g.Delta < 0:
		return 50
	}
	return 0
}

// MeasureEquity is one measure's equity score inputs.
type MeasureEquity struct {
	Attainment float64
	// Improvement is nil when there is no prior year.
	Improvement *float64
	// Weight of the measure in the equity score; 0 means 1.
	Weight float64
}

// Score is 0.5·Attainment + 0.5·Improvement, or Attainment alone without a
// prior year.
func (m MeasureEquity) Score() float64 {
	if m.Improvement == nil {
		return m.Attainment
	}
	return 0.5*m.Attainment + 0.5**m.Improvement
}

// EquityScore is the weighted mean of the measures' equity scores.
func EquityScore(ms []MeasureEquity) float64 {
	var s, w float64
	for _, m := range ms {
		wt := m.Weight
		if wt <= 0 {
			wt = 1
		}
		s += wt * m.Score()
		w += wt
	}
	if w == 0 {
		return math.NaN()
	}
	return s / w
}

// ErrEquityWeight is returned for an equity weight outside [0.2, 1].
var ErrEquityWeight = errors.New("equity: equity weight must be between 0.2 and 1")

// Composite is (1 − w)·quality + w·equity (§6.2); w must be at least
// DefaultEquityWeight (HCP-LAN asks for ≥ 20%).
func Composite(quality, equity, weight float64) (float64, error) {
	if weight < DefaultEquityWeight-1e-12 || weight > 1 {
		return math.NaN(), ErrEquityWeight
	}
	return (1-weight)*quality + weight*equity, nil
}

// DefaultGapClosure is the share of the distance to the benchmark an
// entity must close in a year to earn full improvement points (the 10%
// gap-closure target of Medicaid pay-for-performance contracts).
const DefaultGapClosure = 0.10

// QualityPoints scores one measure of the quality part as Medicaid
// contracts do: the better of achievement (Attainment of the entity rate
// against the benchmark) and improvement, which earns 100 for closing
// closure (0 means DefaultGapClosure) of the prior year's distance to the
// benchmark, proportionally less for less. prior < 0 means no prior year.
func QualityPoints(rate, prior, benchmark, closure float64, dir Direction) float64 {
	ach := Attainment(rate, benchmark, dir)
	if prior < 0 {
		return ach
	}
	if closure <= 0 {
		closure = DefaultGapClosure
	}
	s := dir.sign()
	gap := s * (benchmark - prior)
	if gap <= 0 {
		return ach
	}
	imp := 100 * math.Max(0, math.Min(1, s*(rate-prior)/(closure*gap)))
	return math.Max(ach, imp)
}

// PoolProvider is one provider's claim on an equity pool (§3.3).
type PoolProvider struct {
	ID string
	// HighSVI is the number of attributed members living in tracts with
	// SVI RPL_THEMES ≥ 0.75.
	HighSVI int
	// Score is the provider's quality or equity score in [0, 1].
	Score float64
}

// PoolShare is one provider's allocation.
type PoolShare struct {
	ID     string
	Weight float64
	Amount float64
}

// AllocatePool splits amount in proportion to HighSVI·Score. With no
// positive weight nothing is allocated.
func AllocatePool(amount float64, ps []PoolProvider) []PoolShare {
	out := make([]PoolShare, len(ps))
	var total float64
	for i, p := range ps {
		w := float64(p.HighSVI) * math.Max(0, p.Score)
		out[i] = PoolShare{ID: p.ID, Weight: w}
		total += w
	}
	if total == 0 {
		return out
	}
	for i := range out {
		out[i].Amount = amount * out[i].Weight / total
	}
	return out
}

// HighSVIThreshold is the SVI RPL_THEMES from which a tract counts as
// highly vulnerable for the equity pool (top quartile).
const HighSVIThreshold = 0.75

// HighSVIMembers counts, per attributed provider, the members living in a
// high-vulnerability area (SVI ≥ threshold; 0 means HighSVIThreshold),
// looked up by Attributes.GeoKeys. Members without a provider
// are not counted.
func HighSVIMembers(members []Attributes, svi SVITable, threshold float64) map[string]int {
	if threshold <= 0 {
		threshold = HighSVIThreshold
	}
	out := map[string]int{}
	for i := range members {
		m := &members[i]
		if m.Provider == "" {
			continue
		}
		for _, k := range m.GeoKeys() {
			if v, ok := svi[k]; ok && k != "" {
				if v >= threshold {
					out[m.Provider]++
				}
				break
			}
		}
	}
	return out
}

// WorstRate is the least favourable rate among the comparable strata of
// an analysis, the r_worst of the equity attainment score; ok is false
// when no stratum is comparable.
func WorstRate(a Analysis) (rate float64, ok bool) {
	for i := range a.Strata {
		s := &a.Strata[i]
		if !s.Comparable() {
			continue
		}
		if !ok || a.Direction.better(rate, s.Rate) {
			rate, ok = s.Rate, true
		}
	}
	return rate, ok
}
