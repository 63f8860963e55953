package equity

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// Completeness is the share of the denominator by data status (§6.1).
type Completeness struct {
	Denominator              int
	Known, Unknown, Declined float64
}

// DataCompleteness reports, for a single-dimension stratification, which
// share of the denominator has a known value, an unknown one or a declined
// answer.
func DataCompleteness(s Stratification) Completeness {
	c := Completeness{}
	var unk, dec int
	for _, st := range s.Strata {
		c.Denominator += st.Denominator
		for _, v := range st.Values {
			if v == AskedDeclined {
				dec += st.Denominator
				break
			}
			if v == Unknown {
				unk += st.Denominator
				break
			}
		}
	}
	if c.Denominator == 0 {
		return c
	}
	n := float64(c.Denominator)
	c.Unknown, c.Declined = float64(unk)/n, float64(dec)/n
	c.Known = 1 - c.Unknown - c.Declined
	return c
}

// BenjaminiHochberg flags the p-values significant at false-discovery rate
// q (step-up procedure); NaN p-values are never flagged and do not count
// as tests.
func BenjaminiHochberg(p []float64, q float64) []bool {
	idx := make([]int, 0, len(p))
	for i, v := range p {
		if !math.IsNaN(v) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	m := float64(len(idx))
	out := make([]bool, len(p))
	k := -1
	for rank, i := range idx {
		if p[i] <= q*float64(rank+1)/m {
			k = rank
		}
	}
	for rank := 0; rank <= k; rank++ {
		out[idx[rank]] = true
	}
	return out
}

// IndexIntervals are Monte Carlo intervals of the indices without a
// closed-form SE (§2.2): ID unweighted and weighted, ID vs best, and the
// mean differences from the best group.
type IndexIntervals struct {
	Sims                       int
	IDUnweighted, IDWeighted   Interval
	IDBest                     Interval
	MDBUnweighted, MDBWeighted Interval
}

// DefaultSims is the number of Monte Carlo draws (equity.md: ≥ 1000).
const DefaultSims = 1000

// SimulateIndices draws each comparable group's rate from N(r_j, SE_j)
// truncated to [0, 1], recomputes the indices and returns the 2.5th and
// 97.5th percentiles. The seed makes runs reproducible. overall, when not
// nil, fixes μ at the entity's overall rate as in ComputeIndices.
func SimulateIndices(strata []Stratum, dir Direction, overall *Counts, sims int, seed uint64) (IndexIntervals, bool) {
	var groups []Counts
	for i := range strata {
		if strata[i].Comparable() {
			groups = append(groups, strata[i].Counts)
		}
	}
	if len(groups) < 2 {
		return IndexIntervals{}, false
	}
	if sims <= 0 {
		sims = DefaultSims
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	J := len(groups)
	r, se, p := make([]float64, J), make([]float64, J), make([]float64, J)
	var sn float64
	for _, g := range groups {
		sn += float64(g.Denominator)
	}
	for j, g := range groups {
		r[j], se[j], p[j] = g.Rate(), math.Sqrt(WaldVar(g.Numerator, g.Denominator)), float64(g.Denominator)/sn
	}
	draws := make([][]float64, 5)
	sim := make([]float64, J)
	for range sims {
		mu := 0.0
		for j := range sim {
			sim[j] = math.Min(1, math.Max(0, r[j]+se[j]*rng.NormFloat64()))
			mu += p[j] * sim[j]
		}
		if overall != nil && overall.Denominator > 0 {
			mu = overall.Rate()
		}
		v := simIndices(sim, p, mu, dir)
		for k := range draws {
			draws[k] = append(draws[k], v[k])
		}
	}
	ci := func(xs []float64) Interval {
		xs = slices.DeleteFunc(xs, math.IsNaN)
		if len(xs) == 0 {
			return Interval{math.NaN(), math.NaN()}
		}
		slices.Sort(xs)
		return Interval{quantile(xs, 0.025), quantile(xs, 0.975)}
	}
	return IndexIntervals{Sims: sims, IDUnweighted: ci(draws[0]), IDWeighted: ci(draws[1]), IDBest: ci(draws[2]),
		MDBUnweighted: ci(draws[3]), MDBWeighted: ci(draws[4])}, true
}

// simIndices is ID_u, ID_w, ID_best, MDBU, MDBW for rates r with shares p.
// indicesOf takes its point estimates from here too, so the simulated
// intervals always bracket the very formulas that are reported.
func simIndices(r, p []float64, mu float64, dir Direction) [5]float64 {
	best := 0
	for j := range r {
		if dir.better(r[j], r[best]) {
			best = j
		}
	}
	aBest := dir.adverse(r[best])
	var idu, idw, excess, mdbu, mdbw float64
	for j := range r {
		dev := math.Abs(r[j] - mu)
		idu += dev
		idw += p[j] * dev
		mdbu += math.Abs(r[j] - r[best])
		mdbw += p[j] * math.Abs(r[j]-r[best])
		if j != best {
			excess += (dir.adverse(r[j]) - aBest) / aBest
		}
	}
	J := float64(len(r))
	return [5]float64{100 / J * idu / mu, 100 * idw / mu, 100 * excess / (J - 1), mdbu / J, mdbw}
}

// quantile interpolates linearly in sorted xs (R type 7).
func quantile(xs []float64, q float64) float64 {
	h := q * float64(len(xs)-1)
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (h-lo)*(xs[i+1]-xs[i])
}
