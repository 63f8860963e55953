package equity

import (
	"math"
)

// Indices are the summary disparity indices over the J comparable strata
// (§2.1, §2.2). Rates are proportions; ID values are percentages.
type Indices struct {
	J int
	// Mu is the mean the ID and BGV/Theil/MLD use; MuSource says whether
	// it is the pooled rate of the included groups or the entity overall.
	Mu       float64
	MuSource string
	// IDUnweighted, IDWeighted: Pearcy–Keppel index of disparity (×100).
	IDUnweighted, IDWeighted float64
	// IDBest: mean excess over the best group on the adverse scale (×100);
	// SRR = 1 + IDBest/100.
	IDBest, SRR float64
	// RangeDiff = best − worst (absolute); RangeRatio = r_max / r_min.
	RangeDiff, RangeRatio float64
	// BGV is the between-group variance with its delta-method SE.
	BGV, BGVSE float64
	// Theil T and mean log deviation (unscaled) with delta-method SEs.
	Theil, TheilSE float64
	MLD, MLDSE     float64
	// MDBUnweighted = Σ|r_j − r*|/J; MDBWeighted = Σ p_j|r_j − r*|.
	MDBUnweighted, MDBWeighted float64
}

// Mu sources.
const (
	MuIncludedGroups = "included-groups"
	MuEntityOverall  = "entity-overall"
)

// ComputeIndices summarises the comparable strata. If overall is non-nil
// its rate is used as μ (MuEntityOverall) instead of the pooled rate of the
// included groups. ok is false with fewer than two comparable strata.
func ComputeIndices(strata []Stratum, dir Direction, overall *Counts) (ix Indices, ok bool) {
	var groups []Counts
	for i := range strata {
		if strata[i].Comparable() {
			groups = append(groups, strata[i].Counts)
		}
	}
	return indicesOf(groups, dir, overall)
}

func indicesOf(groups []Counts, dir Direction, overall *Counts) (ix Indices, ok bool) {
	J := len(groups)
	ix.J = J
	if J < 2 {
		return ix, false
	}
	var sx, sn float64
	r := make([]float64, J)
	p := make([]float64, J)
	se2 := make([]float64, J)
	for j, g := range groups {
		sx += float64(g.Numerator)
		sn += float64(g.Denominator)
		r[j] = g.Rate()
		se2[j] = WaldVar(g.Numerator, g.Denominator)
	}
	for j, g := range groups {
		p[j] = float64(g.Denominator) / sn
	}
	mu := sx / sn
	ix.MuSource = MuIncludedGroups
	if overall != nil && overall.Denominator > 0 {
		mu = overall.Rate()
		ix.MuSource = MuEntityOverall
	}
	ix.Mu = mu

	v := simIndices(r, p, mu, dir)
	ix.IDUnweighted, ix.IDWeighted, ix.IDBest, ix.MDBUnweighted, ix.MDBWeighted = v[0], v[1], v[2], v[3], v[4]
	ix.SRR = 1 + ix.IDBest/100
	rmin, rmax := r[0], r[0]
	var bgv, theil, mld float64
	for j := range r {
		rmin, rmax = math.Min(rmin, r[j]), math.Max(rmax, r[j])
		bgv += p[j] * sq(r[j]-mu)
		rho := theilRate(r[j]) / mu
		theil += p[j] * rho * math.Log(rho)
		mld -= p[j] * math.Log(rho)
	}
	ix.RangeDiff = rmax - rmin
	ix.RangeRatio = rmax / rmin
	ix.BGV, ix.Theil, ix.MLD = bgv, theil, mld

	// Delta-method standard errors (Ahn et al. 2018, as in WHO healthequal).
	var s1, s2, s3, s4 float64
	for j := range r {
		a := p[j] * p[j] * se2[j]
		s1 += a * sq(r[j]-mu)
		s2 += a
		s3 += a * a
		s4 += sq(p[j]) * sq(1-p[j]) * se2[j] * se2[j]
	}
	ix.BGVSE = math.Sqrt(4*s1 + 2*(s2*s2-s3+s4))
	var c float64
	for j := range r {
		rho := theilRate(r[j]) / mu
		c += rho * (1 + math.Log(rho)) * p[j]
	}
	var tv, mv float64
	for j := range r {
		rho := theilRate(r[j]) / mu
		tv += sq(1+math.Log(rho)-c) * p[j] * p[j] * se2[j] / (mu * mu)
		mv += se2[j] * p[j] * p[j] / (mu * mu) * sq(1-1/rho)
	}
	ix.TheilSE, ix.MLDSE = math.Sqrt(tv), math.Sqrt(mv)
	return ix, true
}

// theilRate replaces a zero rate by 1e-6 before logarithms, as healthequal
// does, so a group without events does not make the index infinite.
func theilRate(r float64) float64 {
	if r == 0 {
		return 1e-6
	}
	return r
}
