package equity_test

import (
	"fmt"

	"github.com/equitas/equitas/measures/equity"
)

// Stratify patient results by race, analyse them against the best group
// and print each stratum's rate, gap and suppression.
func Example() {
	white := equity.Attributes{Race: "2106-3"}
	black := equity.Attributes{Race: "2054-5"}
	var recs []equity.Record
	add := func(a *equity.Attributes, n, x int) {
		for i := 0; i < n; i++ {
			recs = append(recs, equity.Record{Attributes: a, InitialPopulation: true, Denominator: true, Numerator: i < x})
		}
	}
	add(&white, 1000, 720)
	add(&black, 400, 232)

	s := equity.Stratify(recs, []equity.Dimension{equity.DimRace}, equity.Options{})
	a, err := equity.Analyze(s, equity.Increase, equity.AnalysisOptions{Strategy: equity.RefBest})
	if err != nil {
		panic(err)
	}
	for i, st := range a.Strata {
		d := a.Disparities[i]
		fmt.Printf("%s %d/%d rate %.3f CI (%.3f, %.3f) gap %.3f CI (%.3f, %.3f) DR %.2f %s\n",
			st.Values[0], st.Numerator, st.Denominator, st.Rate, st.CI.Low, st.CI.High,
			d.AbsGap, d.AbsGapCI.Low, d.AbsGapCI.High, d.DisparityRatio, st.Suppression())
	}
	fmt.Printf("ID_best %.2f\n", a.Indices.IDBest)
	// Output:
	// 2106-3 720/1000 rate 0.720 CI (0.691, 0.747) gap 0.000 CI (0.000, 0.000) DR 1.00 none
	// 2054-5 232/400 rate 0.580 CI (0.531, 0.627) gap 0.140 CI (0.085, 0.196) DR 1.50 none
	// ID_best 50.00
}
