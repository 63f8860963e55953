package equity

import (
	"cmp"
	"math"
	"slices"
)

// Direction is a measure's improvement notation.
type Direction int

const (
	// Increase: a higher rate is better (FHIR improvementNotation "increase").
	Increase Direction = iota
	// Decrease: a lower rate is better (an adverse or inverse measure).
	Decrease
)

// ParseDirection maps a FHIR measure-improvement-notation code to a
// Direction; anything but "decrease" means Increase, the FHIR default.
func ParseDirection(code string) Direction {
	if code == "decrease" {
		return Decrease
	}
	return Increase
}

// Code is the FHIR measure-improvement-notation code.
func (d Direction) Code() string {
	if d == Decrease {
		return "decrease"
	}
	return "increase"
}

// sign is s of §1.1: +1 when higher is better.
func (d Direction) sign() float64 {
	if d == Decrease {
		return -1
	}
	return 1
}

// adverse maps a rate to the adverse-event scale (§0.1).
func (d Direction) adverse(r float64) float64 {
	if d == Decrease {
		return r
	}
	return 1 - r
}

// better reports whether rate a is more favourable than b.
func (d Direction) better(a, b float64) bool {
	if d == Decrease {
		return a < b
	}
	return a > b
}

// Suppression says why a stratum's figures are withheld.
type Suppression string

// Suppression reasons, as the CSV's suppression_reason column and the
// equity-suppression extension name them (§6.3).
const (
	NotSuppressed        Suppression = "none"
	SmallDenominator     Suppression = "small-denominator"
	PrivacyPrimary       Suppression = "privacy-primary"
	PrivacyComplementary Suppression = "privacy-complementary"
)

// The HEDIS small-denominator rule and the CMS cell-size policy.
const (
	defaultMinDenominator = 30
	defaultMaxSmallCell   = 10
)

// Policy holds the reportability and privacy rules (§0.3, §4.1, §4.6).
type Policy struct {
	// MinDenominator is the smallest reportable denominator (HEDIS NA
	// rule); 0 means 30.
	MinDenominator int
	// MaxSmallCell: no released count may lie in 1…MaxSmallCell (CMS cell
	// size policy); 0 means 10, negative disables privacy suppression.
	MaxSmallCell int
	// Z is the normal quantile for intervals; 0 means Z95.
	Z float64
}

func (p Policy) minDen() int {
	if p.MinDenominator <= 0 {
		return defaultMinDenominator
	}
	return p.MinDenominator
}

func (p Policy) maxCell() int {
	if p.MaxSmallCell == 0 {
		return defaultMaxSmallCell
	}
	return p.MaxSmallCell
}

func (p Policy) z() float64 {
	if p.Z <= 0 {
		return Z95
	}
	return p.Z
}

// Counts are the population counts of a stratum. Denominator is after
// exclusions and exceptions have been removed.
type Counts struct {
	InitialPopulation int
	Denominator       int
	Exclusions        int
	Numerator         int
}

// Rate is Numerator/Denominator, NaN for an empty denominator.
func (c Counts) Rate() float64 { return prop(c.Numerator, c.Denominator) }

// Stratum is one group's result with its statistics.
type Stratum struct {
	// Values has one code per stratifier dimension (see Dimension).
	Values []string
	Counts
	Rate float64
	CI   Interval
	// RSE is the relative standard error SE/r (NaN when r = 0).
	RSE float64
	// Missing is set when any value is unknown or asked-declined: such
	// strata are listed but are never the reference nor in indices.
	Missing bool
	// Reportable: denominator ≥ Policy.MinDenominator.
	Reportable bool
	// Privacy is PrivacyPrimary, PrivacyComplementary or NotSuppressed.
	Privacy Suppression
}

// Key joins the stratum values.
func (s Stratum) Key() string { return joinKey(s.Values) }

// Suppression is the reason reported for the stratum: privacy first, then
// the small denominator, else NotSuppressed.
func (s Stratum) Suppression() Suppression {
	if s.Privacy != NotSuppressed && s.Privacy != "" {
		return s.Privacy
	}
	if !s.Reportable {
		return SmallDenominator
	}
	return NotSuppressed
}

// Masked reports whether the counts may not be released.
func (s Stratum) Masked() bool {
	return s.Privacy == PrivacyPrimary || s.Privacy == PrivacyComplementary
}

// Comparable reports whether the stratum may be a reference or enter
// summary indices: reportable, releasable and of a known category.
func (s Stratum) Comparable() bool {
	return s.Reportable && !s.Masked() && !s.Missing && s.Denominator > 0
}

// Assess fills in rates, intervals, reportability and privacy suppression
// for the strata of one stratifier, in place. Complementary suppression is
// applied within the slice: if a single stratum is suppressed, or the
// suppressed strata together still form a small cell, the next-smallest
// releasable stratum is suppressed too, because the published total would
// let them be derived (§4.6).
func Assess(strata []Stratum, pol Policy) {
	z, lim := pol.z(), pol.maxCell()
	small := func(v int) bool { return lim > 0 && v >= 1 && v <= lim }
	nSup := 0
	for i := range strata {
		s := &strata[i]
		s.Rate = s.Counts.Rate()
		s.CI = Wilson(s.Numerator, s.Denominator, z)
		s.RSE = math.NaN()
		if s.Denominator > 0 && s.Rate > 0 {
			s.RSE = math.Sqrt(WaldVar(s.Numerator, s.Denominator)) / s.Rate
		}
		s.Reportable = s.Denominator >= pol.minDen()
		s.Privacy = NotSuppressed
		if small(s.Numerator) || small(s.Denominator) || small(s.Denominator-s.Numerator) {
			s.Privacy = PrivacyPrimary
			nSup++
		}
	}
	if nSup == 0 || lim <= 0 {
		return
	}
	for {
		var x, n, k int
		for i := range strata {
			if strata[i].Masked() {
				x += strata[i].Numerator
				n += strata[i].Denominator
				k++
			}
		}
		if k != 1 && !small(x) && !small(n) && !small(n-x) {
			return
		}
		next := -1
		for i := range strata {
			if strata[i].Masked() {
				continue
			}
			if next < 0 || cmp.Or(cmp.Compare(strata[i].Denominator, strata[next].Denominator),
				cmp.Compare(strata[i].Key(), strata[next].Key())) < 0 {
				next = i
			}
		}
		if next < 0 {
			return
		}
		strata[next].Privacy = PrivacyComplementary
	}
}

// SortStrata orders strata by descending denominator, then key, the order
// reports list them in.
func SortStrata(strata []Stratum) {
	slices.SortFunc(strata, func(a, b Stratum) int {
		return cmp.Or(cmp.Compare(b.Denominator, a.Denominator), cmp.Compare(a.Key(), b.Key()))
	})
}
