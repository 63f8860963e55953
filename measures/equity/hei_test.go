package equity

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHEIOracle(t *testing.T) {
	cs := []HEIContract{
		{"A", []float64{.80, .60, .85}, 20}, {"B", []float64{.75, .72, .80}, 45}, {"C", []float64{.70, .70, .90}, 60},
		{"D", []float64{.65, .66, .70}, 10}, {"E", []float64{.60, .74, .75}, 30}, {"F", []float64{.55, .50, .88}, 70},
	}
	got := SimulateHEI(cs, []float64{1, 3, 1}, nil)
	want := []struct {
		points      []int
		hei, reward float64
	}{
		{[]int{1, -1, 0}, -0.4, 0}, {[]int{1, 1, 0}, 0.8, 0.32}, {[]int{0, 0, 1}, 0.2, 0.08},
		{[]int{0, 0, -1}, -0.2, 0}, {[]int{-1, 1, -1}, 0.2, 0.04}, {[]int{-1, -1, 1}, -0.6, 0},
	}
	require.Len(t, got, len(want))
	for i, w := range want {
		assert.Equal(t, w.points, got[i].Points, cs[i].ID)
		assert.InDelta(t, w.hei, got[i].HEI, 1e-12, cs[i].ID)
		assert.InDelta(t, w.reward, got[i].Reward, 1e-12, cs[i].ID)
	}

	// An adverse measure flips the thirds; too few scores give no index.
	flip := SimulateHEI(cs, []float64{1, 3, 1}, []Direction{Decrease, Increase, Increase})
	assert.Equal(t, -1, flip[0].Points[0])
	sparse := SimulateHEI([]HEIContract{{"X", []float64{.5, math.NaN(), math.NaN()}, 50}, {"Y", []float64{.6, .7, .8}, 50}}, []float64{1, 1, 1}, nil)
	assert.True(t, math.IsNaN(sparse[0].HEI))
	assert.Equal(t, 0.0, sparse[0].Reward)
}

func TestHESSOracle(t *testing.T) {
	s := HESS(HESSInput{GroupPrior: .55, GroupCurrent: .62, ReferencePrior: .68, ReferenceCurrent: .70,
		NationalMean: .60, NationalSD: .05, WithinPlanMean: 0, WithinPlanSD: .04, NationalChange: .03, BenchmarkedSD: .03})
	assert.InDelta(t, 0.4, s.CrossSectional, 1e-9)
	assert.InDelta(t, 1.25, s.WithinPlan, 1e-9)
	assert.InDelta(t, 1.333333, s.Benchmarked, tol6)
	assert.InDelta(t, 1.291667, s.Improvement, tol6)
	assert.InDelta(t, 0.845833, s.HESS, tol6)
}

func TestPoolInputsAndWorstRate(t *testing.T) {
	svi := SVITable{"02139": 0.81, "Essex": 0.30, "t1": 0.9}
	members := []Attributes{
		{Provider: "P1", ZIP: "02139"}, {Provider: "P1", ZIP: "02139"}, {Provider: "P1", County: "Essex"},
		{Provider: "P2", Tract: "t1", ZIP: "00000"}, {Provider: "P2", ZIP: "nowhere"}, {ZIP: "02139"},
		{Provider: "P3", Tract: "t1", ZIP: "02139", County: "Essex"},
	}
	assert.Equal(t, map[string]int{"P1": 2, "P2": 1, "P3": 1}, HighSVIMembers(members, svi, 0))

	a, err := Analyze(exampleAStratification(), Increase, AnalysisOptions{})
	require.NoError(t, err)
	w, ok := WorstRate(a)
	require.True(t, ok)
	assert.InDelta(t, 0.58, w, 1e-12, "Black is the worst comparable group; AIAN is suppressed")
	assert.InDelta(t, 82.857143, Attainment(w, 0.70, Increase), tol6)

	b := exampleB()
	ab, err := Analyze(Stratification{Dimensions: []Dimension{DimRace}, Strata: b}, Decrease, AnalysisOptions{})
	require.NoError(t, err)
	w, ok = WorstRate(ab)
	require.True(t, ok)
	assert.InDelta(t, 0.44, w, 1e-12)
	assert.InDelta(t, 75.0, Attainment(w, 0.33, Decrease), 1e-9)
}
