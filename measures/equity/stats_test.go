package equity

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const tol6 = 5e-7 // the oracles are rounded to 6 decimals

func st(code string, x, n int) Stratum {
	return Stratum{Values: []string{code}, Counts: Counts{Denominator: n, Numerator: x}}
}

// exampleA is §1.4 (COL, favourable).
func exampleA() []Stratum {
	s := []Stratum{st("White", 720, 1000), st("Black", 232, 400), st("Hispanic", 189, 300), st("Asian", 150, 200), st("AIAN", 15, 25), st("UNK", 45, 75)}
	s[5].Missing = true
	Assess(s, Policy{})
	return s
}

// exampleB is §1.5 (GSD > 9%, adverse).
func exampleB() []Stratum {
	s := []Stratum{st("White", 150, 500), st("Black", 110, 250), st("Hispanic", 76, 200), st("Asian", 24, 100)}
	Assess(s, Policy{})
	return s
}

func TestWilsonOracles(t *testing.T) {
	for _, tc := range []struct {
		x, n      int
		low, high float64
	}{
		{720, 1000, 0.691370, 0.746946}, {232, 400, 0.531096, 0.627382}, {189, 300, 0.574045, 0.682668},
		{150, 200, 0.685659, 0.804918}, {15, 25, 0.407395, 0.765967}, {45, 75, 0.486880, 0.703375},
		{150, 500, 0.261482, 0.341568}, {110, 250, 0.379837, 0.501979}, {76, 200, 0.315590, 0.448933},
		{24, 100, 0.166913, 0.332323},
	} {
		ci := Wilson(tc.x, tc.n, Z95)
		assert.InDelta(t, tc.low, ci.Low, tol6, "%d/%d", tc.x, tc.n)
		assert.InDelta(t, tc.high, ci.High, tol6, "%d/%d", tc.x, tc.n)
	}
	assert.Equal(t, Interval{0, 1}, Wilson(0, 0, Z95))
	zero := Wilson(0, 40, Z95)
	assert.Equal(t, 0.0, zero.Low)
	assert.Greater(t, zero.High, 0.0)
}

func TestPairwiseOracles(t *testing.T) {
	ci := Newcombe(720, 1000, 232, 400, Z95)
	assert.InDelta(t, 0.084640, ci.Low, tol6)
	assert.InDelta(t, 0.195837, ci.High, tol6)
	ci = Newcombe(110, 250, 150, 500, Z95)
	assert.InDelta(t, 0.066874, ci.Low, tol6)
	assert.InDelta(t, 0.212973, ci.High, tol6)

	for _, tc := range []struct {
		name             string
		x1, n1, x2, n2   int
		ratio, low, high float64
	}{
		{"White/Black COL", 720, 1000, 232, 400, 1.241379, 1.132365, 1.360888},
		{"Black/White GSD", 110, 250, 150, 500, 1.466667, 1.208508, 1.779973},
		{"not screened Black/White", 168, 400, 280, 1000, 1.5, 1.288329, 1.746448},
	} {
		r, ci, ok := Katz(tc.x1, tc.n1, tc.x2, tc.n2, Z95)
		require.True(t, ok, tc.name)
		assert.InDelta(t, tc.ratio, r, tol6, tc.name)
		assert.InDelta(t, tc.low, ci.Low, tol6, tc.name)
		assert.InDelta(t, tc.high, ci.High, tol6, tc.name)
	}
	z, p := TwoProportionZ(720, 1000, 232, 400)
	assert.InDelta(t, 5.0730, z, 5e-5)
	assert.InDelta(t, 3.9e-7, p, 0.05e-7)
	_, _, ok := Katz(1, 0, 1, 1, Z95)
	assert.False(t, ok)
}

func TestAssessReportabilityAndSuppression(t *testing.T) {
	s := exampleA()
	byCode := map[string]Stratum{}
	for _, x := range s {
		byCode[x.Values[0]] = x
	}
	aian := byCode["AIAN"]
	assert.False(t, aian.Reportable)
	assert.Equal(t, PrivacyPrimary, aian.Suppression(), "25−15 = 10 is a small cell")
	assert.True(t, aian.Masked())
	// AIAN alone is suppressed, so the next-smallest (Unknown, n = 75) is
	// suppressed as its complement.
	assert.Equal(t, PrivacyComplementary, byCode["UNK"].Privacy)
	for _, c := range []string{"White", "Black", "Hispanic", "Asian"} {
		assert.Equal(t, NotSuppressed, byCode[c].Suppression(), c)
		assert.True(t, byCode[c].Comparable(), c)
	}

	for _, tc := range []struct {
		name   string
		strata []Stratum
		want   []Suppression
	}{
		{"zero numerator is releasable", []Stratum{st("a", 0, 40), st("b", 20, 50)}, []Suppression{NotSuppressed, NotSuppressed}},
		{"small denominator only", []Stratum{st("a", 12, 25), st("b", 20, 50)}, []Suppression{SmallDenominator, NotSuppressed}},
		{"two suppressed with a large sum need no complement", []Stratum{st("a", 5, 40), st("b", 6, 40), st("c", 20, 50)}, []Suppression{PrivacyPrimary, PrivacyPrimary, NotSuppressed}},
		{"two suppressed summing to a small cell take a third", []Stratum{st("a", 2, 40), st("b", 3, 40), st("c", 20, 50), st("d", 30, 60)}, []Suppression{PrivacyPrimary, PrivacyPrimary, PrivacyComplementary, NotSuppressed}},
		{"full count small", []Stratum{st("a", 4, 9), st("b", 40, 90)}, []Suppression{PrivacyPrimary, PrivacyComplementary}},
	} {
		Assess(tc.strata, Policy{})
		got := make([]Suppression, len(tc.strata))
		for i := range tc.strata {
			got[i] = tc.strata[i].Suppression()
		}
		assert.Equal(t, tc.want, got, tc.name)
	}
}

func find(t *testing.T, s []Stratum, code string) Stratum {
	t.Helper()
	for _, x := range s {
		if x.Values[0] == code {
			return x
		}
	}
	t.Fatalf("no stratum %s", code)
	return Stratum{}
}

func TestDisparityOracles(t *testing.T) {
	a, b := exampleA(), exampleB()
	overallA := Counts{Denominator: 2000, Numerator: 1351}
	for _, tc := range []struct {
		name      string
		strata    []Stratum
		dir       Direction
		strategy  RefStrategy
		benchmark float64
		refRate   float64
		group     string
		absGap    float64
		rr, dr    float64
	}{
		{"A best=Asian, Black", a, Increase, RefBest, 0, 0.75, "Black", 0.17, 0.773333, 1.68},
		{"A largest=White, Black", a, Increase, RefLargest, 0, 0.72, "Black", 0.14, 0.805556, 1.5},
		{"A fixed 0.70, Black", a, Increase, RefFixed, 0.70, 0.70, "Black", 0.12, 0.828571, 1.4},
		{"A best-or-benchmark (best wins)", a, Increase, RefBestOrBenchmark, 0.70, 0.75, "Black", 0.17, 0.773333, 1.68},
		{"A best-or-benchmark (benchmark wins)", a, Increase, RefBestOrBenchmark, 0.80, 0.80, "Black", 0.22, 0.725, 2.1},
		{"A overall", a, Increase, RefOverall, 0, 0.6755, "Black", 0.0955, 0.58 / 0.6755, 0.42 / (1 - 0.6755)},
		{"B best=Asian, Black", b, Decrease, RefBest, 0, 0.24, "Black", 0.20, 1.833333, 1.833333},
		{"B best, Hispanic", b, Decrease, RefBest, 0, 0.24, "Hispanic", 0.14, 1.583333, 1.583333},
		{"B best, White", b, Decrease, RefBest, 0, 0.24, "White", 0.06, 1.25, 1.25},
		{"B largest=White, Black", b, Decrease, RefLargest, 0, 0.30, "Black", 0.14, 1.466667, 1.466667},
	} {
		ref, err := ChooseReference(tc.strata, overallA, tc.dir, tc.strategy, tc.benchmark)
		require.NoError(t, err, tc.name)
		assert.InDelta(t, tc.refRate, ref.Rate, 1e-12, tc.name)
		d := Compare(find(t, tc.strata, tc.group).Counts, ref, tc.dir, 0)
		assert.InDelta(t, tc.absGap, d.AbsGap, 1e-9, tc.name)
		assert.InDelta(t, tc.rr, d.RateRatio, tol6, tc.name)
		assert.InDelta(t, tc.dr, d.DisparityRatio, tol6, tc.name)
		assert.InDelta(t, 100*(tc.dr-1), d.RelDiffPct, 1e-4, tc.name)
	}

	ref, err := ChooseReference(a, overallA, Increase, RefLargest, 0)
	require.NoError(t, err)
	d := Compare(find(t, a, "Black").Counts, ref, Increase, 0)
	assert.InDelta(t, 0.084640, d.AbsGapCI.Low, tol6)
	assert.InDelta(t, 0.195837, d.AbsGapCI.High, tol6)
	assert.InDelta(t, 1.288329, d.DisparityRatioCI.Low, tol6)
	assert.InDelta(t, 1.746448, d.DisparityRatioCI.High, tol6)
	assert.InDelta(t, 3.9e-7, d.PValue, 0.05e-7)
	assert.True(t, d.Significant)

	// Adverse measure: the gap of Black vs White is signed positive (worse)
	// and its CI is the Newcombe CI of r_B − r_W.
	ref, err = ChooseReference(b, Counts{}, Decrease, RefLargest, 0)
	require.NoError(t, err)
	d = Compare(find(t, b, "Black").Counts, ref, Decrease, 0)
	assert.InDelta(t, 0.066874, d.AbsGapCI.Low, tol6)
	assert.InDelta(t, 0.212973, d.AbsGapCI.High, tol6)
	assert.InDelta(t, 1.208508, d.RateRatioCI.Low, tol6)
	assert.InDelta(t, 1.779973, d.RateRatioCI.High, tol6)

	// Suppressed, missing and small strata never become the reference.
	only := []Stratum{st("AIAN", 15, 25), st("UNK", 45, 75)}
	only[1].Missing = true
	Assess(only, Policy{})
	_, err = ChooseReference(only, Counts{}, Increase, RefBest, 0)
	require.ErrorIs(t, err, ErrNoReference)
	_, err = ChooseReference(a, overallA, Increase, "median", 0)
	require.Error(t, err)
}

func TestIndexOracles(t *testing.T) {
	a, b := exampleA(), exampleB()
	ix, ok := ComputeIndices(a, Increase, nil)
	require.True(t, ok)
	assert.Equal(t, 4, ix.J)
	for _, tc := range []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"mu", ix.Mu, 1291.0 / 1900, 1e-12},
		{"ID_u", ix.IDUnweighted, 9.566228, tol6},
		{"ID_w", ix.IDWeighted, 8.463451, tol6},
		{"ID_best", ix.IDBest, 42.666667, tol6},
		{"SRR", ix.SRR, 1.426667, tol6},
		{"RD", ix.RangeDiff, 0.17, 1e-9},
		{"RR", ix.RangeRatio, 1.293103, tol6},
		{"BGV", ix.BGV, 0.003857618, 5e-10},
		{"BGV SE", ix.BGVSE, 0.001382286, 5e-10},
		{"Theil", ix.Theil, 0.004270511, 5e-10},
		{"Theil SE", ix.TheilSE, 0.001536812, 5e-10},
		{"MLD", ix.MLD, 0.004374799, 5e-10},
		{"MLD SE", ix.MLDSE, 0.001600186, 5e-10},
		{"MDBU", ix.MDBUnweighted, 0.08, 1e-9},
		{"MDBW", ix.MDBWeighted, 0.070526, tol6},
	} {
		assert.InDelta(t, tc.want, tc.got, tc.tol, tc.name)
	}
	assert.Equal(t, MuIncludedGroups, ix.MuSource)
	lo := ix.BGV - Z95*ix.BGVSE
	hi := ix.BGV + Z95*ix.BGVSE
	assert.InDelta(t, 0.001148, lo, 5e-7)
	assert.InDelta(t, 0.006567, hi, 5e-7)

	ov, ok := ComputeIndices(a, Increase, &Counts{Denominator: 2000, Numerator: 1351})
	require.True(t, ok)
	assert.InDelta(t, 9.622502, ov.IDUnweighted, tol6)
	assert.Equal(t, MuEntityOverall, ov.MuSource)

	ib, ok := ComputeIndices(b, Decrease, nil)
	require.True(t, ok)
	assert.InDelta(t, 360.0/1050, ib.Mu, 1e-12)
	assert.InDelta(t, 20.416667, ib.IDUnweighted, tol6)
	assert.InDelta(t, 17.619048, ib.IDWeighted, tol6)
	assert.InDelta(t, 55.555556, ib.IDBest, tol6)

	_, ok = ComputeIndices(a[:1], Increase, nil)
	assert.False(t, ok, "one group has no disparity index")
}

func TestYearOverYearOracles(t *testing.T) {
	rc := CompareRates(Counts{Numerator: 212, Denominator: 400}, Counts{Numerator: 232, Denominator: 400}, Increase, 0)
	assert.InDelta(t, 0.05, rc.Delta, 1e-12)
	assert.InDelta(t, 1.422848, rc.Z, tol6)
	assert.InDelta(t, 0.154780, rc.P, tol6)
	assert.InDelta(t, -0.018801, rc.CI.Low, tol6)
	assert.InDelta(t, 0.118136, rc.CI.High, tol6)
	assert.Equal(t, NoChange, rc.Trend)

	white23, black23 := Counts{Numerator: 700, Denominator: 1000}, Counts{Numerator: 212, Denominator: 400}
	white24, black24 := Counts{Numerator: 720, Denominator: 1000}, Counts{Numerator: 232, Denominator: 400}
	g := CompareGaps(white23, black23, white24, black24, Increase)
	assert.InDelta(t, 0.17, g.PriorGap, 1e-12)
	assert.InDelta(t, 0.14, g.CurrentGap, 1e-12)
	assert.InDelta(t, 0.028857, g.PriorSE, tol6)
	assert.InDelta(t, 0.028471, g.CurrentSE, tol6)
	assert.InDelta(t, -0.03, g.Delta, 1e-12)
	assert.InDelta(t, 0.040538, g.SE, tol6)
	assert.InDelta(t, -0.740042, g.Z, tol6)
	assert.InDelta(t, 0.459275, g.P, tol6)
	assert.Equal(t, NoChange, g.Trend)

	r := CompareRatios(black23, white23, black24, white24)
	assert.InDelta(t, 0.757143, r.Prior, tol6)
	assert.InDelta(t, 0.805556, r.Current, tol6)
	assert.InDelta(t, 0.890463, r.Z, tol6)
	assert.InDelta(t, 0.373217, r.P, tol6)

	for _, tc := range []struct {
		name            string
		prior, cur, pct float64
	}{
		{"ID_u", 11.923077, 9.566228, -19.77},
		{"ID_w", 10.688259, 8.463451, -20.82},
		{"ID_best", 45.679012, 42.666667, -6.59},
	} {
		c := CompareIndex(tc.prior, tc.cur)
		assert.InDelta(t, tc.pct, c.Pct, 0.005, tc.name)
		assert.InDelta(t, tc.cur-tc.prior, c.Abs, 1e-12, tc.name)
	}

	big := CompareRates(Counts{Numerator: 500, Denominator: 1000}, Counts{Numerator: 600, Denominator: 1000}, Decrease, 0)
	assert.Equal(t, Worsening, big.Trend, "a significant rise of an adverse rate is worsening")
}

func TestCompositeOracles(t *testing.T) {
	g := CompareGaps(Counts{Numerator: 700, Denominator: 1000}, Counts{Numerator: 212, Denominator: 400},
		Counts{Numerator: 720, Denominator: 1000}, Counts{Numerator: 232, Denominator: 400}, Increase)
	imp := Improvement(g)
	assert.Equal(t, 50.0, imp, "gap −3 pp, not significant")
	col := MeasureEquity{Attainment: Attainment(0.58, 0.70, Increase), Improvement: &imp}
	assert.InDelta(t, 82.857143, col.Attainment, tol6)
	assert.InDelta(t, 66.428571, col.Score(), tol6)
	gsd := MeasureEquity{Attainment: Attainment(0.44, 0.33, Decrease)}
	assert.InDelta(t, 75.0, gsd.Score(), 1e-9)
	e := EquityScore([]MeasureEquity{col, gsd})
	assert.InDelta(t, 70.714286, e, tol6)
	c, err := Composite(65, e, DefaultEquityWeight)
	require.NoError(t, err)
	assert.InDelta(t, 66.142857, c, tol6)
	_, err = Composite(65, e, 0.1)
	require.ErrorIs(t, err, ErrEquityWeight)

	assert.Equal(t, 100.0, Improvement(GapChange{Delta: -0.05, P: 0.01}))
	assert.Equal(t, 0.0, Improvement(GapChange{Delta: 0.01, P: 0.5}))

	// Quality points: the better of achievement and improvement.
	for _, tc := range []struct {
		name                   string
		rate, prior, benchmark float64
		dir                    Direction
		want                   float64
	}{
		{"no prior year", 0.60, -1, 0.70, Increase, 100 * 0.60 / 0.70},
		{"achievement wins", 0.60, 0.595, 0.70, Increase, 100 * 0.60 / 0.70},
		{"full gap closure wins", 0.52, 0.50, 0.70, Increase, 100},
		{"half the target", 0.51, 0.50, 0.70, Increase, math.Max(100*0.51/0.70, 50)},
		{"adverse: improvement", 0.39, 0.40, 0.30, Decrease, 100},
		{"adverse: worse", 0.45, 0.40, 0.30, Decrease, 100 * 0.30 / 0.45},
		{"above benchmark", 0.80, 0.75, 0.70, Increase, 100},
	} {
		assert.InDelta(t, tc.want, QualityPoints(tc.rate, tc.prior, tc.benchmark, 0, tc.dir), 1e-6, tc.name)
	}
}

func TestEquityPoolOracle(t *testing.T) {
	shares := AllocatePool(100000, []PoolProvider{{"P1", 400, 0.80}, {"P2", 100, 0.90}, {"P3", 250, 0.60}})
	want := []struct {
		w, amt float64
	}{{320, 57142.86}, {90, 16071.43}, {150, 26785.71}}
	for i, s := range shares {
		assert.InDelta(t, want[i].w, s.Weight, 1e-9)
		assert.InDelta(t, want[i].amt, s.Amount, 0.005)
	}
	none := AllocatePool(100, []PoolProvider{{"P", 0, 1}})
	assert.Equal(t, 0.0, none[0].Amount)
}

func TestDataCompletenessAndFDR(t *testing.T) {
	c := DataCompleteness(exampleAStratification())
	assert.Equal(t, 2000, c.Denominator)
	assert.InDelta(t, 75.0/2000, c.Unknown, 1e-12)
	assert.Equal(t, 0.0, c.Declined)
	assert.InDelta(t, 1-75.0/2000, c.Known, 1e-12)

	for _, tc := range []struct {
		name string
		p    []float64
		want []bool
	}{
		// m = 5, q = 0.05: thresholds 0.01 0.02 0.03 0.04 0.05; the
		// largest p under its threshold is 0.03 (rank 3).
		{"step-up", []float64{0.01, 0.045, 0.03, 0.2, 0.005}, []bool{true, false, true, false, true}},
		{"none", []float64{0.5, 0.3}, []bool{false, false}},
		{"NaN ignored", []float64{math.NaN(), 0.01}, []bool{false, true}},
	} {
		assert.Equal(t, tc.want, BenjaminiHochberg(tc.p, 0.05), tc.name)
	}
}

func TestSimulatedIndexIntervals(t *testing.T) {
	a := exampleA()
	ix, ok := ComputeIndices(a, Increase, nil)
	require.True(t, ok)
	ci, ok := SimulateIndices(a, Increase, nil, 0, 123456)
	require.True(t, ok)
	assert.Equal(t, DefaultSims, ci.Sims)
	for _, tc := range []struct {
		name  string
		point float64
		ci    Interval
	}{
		{"ID_u", ix.IDUnweighted, ci.IDUnweighted}, {"ID_w", ix.IDWeighted, ci.IDWeighted},
		{"ID_best", ix.IDBest, ci.IDBest}, {"MDBU", ix.MDBUnweighted, ci.MDBUnweighted}, {"MDBW", ix.MDBWeighted, ci.MDBWeighted},
	} {
		assert.Less(t, tc.ci.Low, tc.point, tc.name)
		assert.Greater(t, tc.ci.High, tc.point, tc.name)
	}
	again, _ := SimulateIndices(a, Increase, nil, 0, 123456)
	assert.Equal(t, ci, again, "seeded runs repeat")
	_, ok = SimulateIndices(a[:1], Increase, nil, 0, 1)
	assert.False(t, ok)
}

func TestKatzZeroCount(t *testing.T) {
	r, ci, ok := Katz(0, 50, 10, 50, Z95)
	require.True(t, ok)
	assert.InDelta(t, (0.5/51)/(10.5/51), r, 1e-12, "Haldane: 0.5 per cell")
	assert.Less(t, ci.Low, r)
	assert.Greater(t, ci.High, r)
	assert.False(t, math.IsInf(KatzSE(0, 50, 0, 50), 0))
}
