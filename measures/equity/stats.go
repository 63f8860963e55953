package equity

import "math"

// Z95 is the standard-normal quantile for a two-sided 95% interval.
const Z95 = 1.959963984540054

// Interval is a closed confidence interval.
type Interval struct {
	Low, High float64
}

// Wilson is the Wilson score interval for x successes out of n (§4.2). It
// is defined at p = 0 and p = 1, unlike the Wald interval; n = 0 gives the
// uninformative interval [0, 1].
func Wilson(x, n int, z float64) Interval {
	if n <= 0 {
		return Interval{0, 1}
	}
	nf := float64(n)
	p := float64(x) / nf
	z2 := z * z
	den := 1 + z2/nf
	center := (p + z2/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	return Interval{math.Max(0, center-half), math.Min(1, center+half)}
}

// Newcombe is the hybrid-score interval (Newcombe 1998, method 10) for the
// difference x1/n1 − x2/n2 of two independent proportions (§4.3).
func Newcombe(x1, n1, x2, n2 int, z float64) Interval {
	p1, p2 := prop(x1, n1), prop(x2, n2)
	w1, w2 := Wilson(x1, n1, z), Wilson(x2, n2, z)
	d := p1 - p2
	return Interval{
		Low:  d - math.Sqrt(sq(p1-w1.Low)+sq(w2.High-p2)),
		High: d + math.Sqrt(sq(w1.High-p1)+sq(p2-w2.Low)),
	}
}

// KatzSE is the standard error of ln(p1/p2) (Katz log method, §4.4). With a
// zero count 0.5 is added to every cell of the 2×2 table (so 1 to each
// denominator) to keep the ratio defined.
func KatzSE(x1, n1, x2, n2 int) float64 {
	a, b, c, d := haldane(x1, n1, x2, n2)
	return math.Sqrt((1-a/b)/a + (1-c/d)/c)
}

func haldane(x1, n1, x2, n2 int) (a, b, c, d float64) {
	a, b, c, d = float64(x1), float64(n1), float64(x2), float64(n2)
	if x1 == 0 || x2 == 0 {
		a, b, c, d = a+0.5, b+1, c+0.5, d+1
	}
	return a, b, c, d
}

// Katz is the ratio (x1/n1)/(x2/n2) with its Katz log interval (§4.4). ok
// is false when a denominator is zero.
func Katz(x1, n1, x2, n2 int, z float64) (ratio float64, ci Interval, ok bool) {
	if n1 <= 0 || n2 <= 0 {
		return math.NaN(), Interval{math.NaN(), math.NaN()}, false
	}
	a, b, c, d := haldane(x1, n1, x2, n2)
	ratio = (a / b) / (c / d)
	se := KatzSE(x1, n1, x2, n2)
	l := math.Log(ratio)
	return ratio, Interval{math.Exp(l - z*se), math.Exp(l + z*se)}, true
}

// TwoProportionZ is the pooled two-proportion z statistic for
// x1/n1 − x2/n2 and its two-sided p-value (§1.4, §4.5).
func TwoProportionZ(x1, n1, x2, n2 int) (z, p float64) {
	if n1 <= 0 || n2 <= 0 {
		return math.NaN(), math.NaN()
	}
	pooled := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(pooled * (1 - pooled) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 0, 1
	}
	z = (prop(x1, n1) - prop(x2, n2)) / se
	return z, TwoSidedP(z)
}

// TwoSidedP is the two-sided standard-normal p-value of z.
func TwoSidedP(z float64) float64 {
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}

// WaldVar is the variance p(1−p)/n of a sample proportion.
func WaldVar(x, n int) float64 {
	if n <= 0 {
		return math.NaN()
	}
	p := prop(x, n)
	return p * (1 - p) / float64(n)
}

func prop(x, n int) float64 {
	if n <= 0 {
		return math.NaN()
	}
	return float64(x) / float64(n)
}

func sq(v float64) float64 { return v * v }
