package measure

import (
	"math"
	"sort"
)

// PatientUnit is the unit key of a patient-based (boolean basis) group: the
// patient is the only member.
const PatientUnit = ""

// Value is one stratifier or supplemental-data value, reduced to a concept
// with a stable key for grouping.
type Value struct {
	// Key identifies the value for grouping (e.g. "system|code", "true", "text:x").
	Key     string
	Concept Concept
}

// StratumValue is the value that places a unit in a stratum: one Value for a
// criteria stratifier, or one per component.
type StratumValue struct {
	Key        string
	Value      *Value
	Components []ComponentValue
}

// ComponentValue is the value of one stratifier component.
type ComponentValue struct {
	Code  *Concept
	Value Value
}

// Observation is one measure-observation result for one unit.
type Observation struct {
	Unit  string
	Value float64
}

// PopulationResult is the membership of one population for one patient,
// after the population rules have been applied.
type PopulationResult struct {
	Code string
	ID   string
	// Members are unit keys: PatientUnit for patient-based groups, resource
	// references (e.g. "Encounter/123") for episode-based ones.
	Members []string
	// Observations holds the values of a measure-observation population.
	Observations []Observation
}

// Count is the number of members.
func (p *PopulationResult) Count() int { return len(p.Members) }

// Has reports whether unit is a member.
func (p *PopulationResult) Has(unit string) bool {
	for _, m := range p.Members {
		if m == unit {
			return true
		}
	}
	return false
}

// StratifierResult assigns the patient's units to strata.
type StratifierResult struct {
	Strata []StratumUnits
}

// StratumUnits lists the units of one stratum.
type StratumUnits struct {
	Value StratumValue
	Units []string
}

// GroupResult is one patient's result for one group.
type GroupResult struct {
	Populations []PopulationResult // aligned with Group.Populations
	Stratifiers []StratifierResult // aligned with Group.Stratifiers
}

// Count returns the count of the first population with code, or 0.
func (g *GroupResult) Count(code string) int {
	for i := range g.Populations {
		if g.Populations[i].Code == code {
			return g.Populations[i].Count()
		}
	}
	return 0
}

// SDEResult holds the values of one supplemental data element for a patient.
type SDEResult struct {
	ID     string
	Values []Value
}

// PatientResult is everything one patient contributes to a report.
type PatientResult struct {
	PatientID string
	Groups    []GroupResult
	SDE       []SDEResult
	// Err is set when the patient could not be evaluated; the patient is then
	// counted in no population.
	Err error
}

// RawPopulation is the value of one population criteria for one patient
// before the population rules apply: unit keys whose criterion held.
type RawPopulation struct {
	Members      []string
	Observations []Observation
}

// ApplyRules turns raw criteria results into population membership for
// one group following the CQF Measures IG:
//
//	proportion: DENOM ⊆ IP; DENEX ⊆ DENOM; NUMER ⊆ DENOM∖DENEX;
//	            NUMEX ⊆ NUMER; DENEXCEP ⊆ DENOM∖DENEX∖NUMER
//	ratio:      DENOM ⊆ IP; DENEX ⊆ DENOM; NUMER ⊆ IP; NUMEX ⊆ NUMER
//	            (with two initial populations, criteriaReference picks the IP)
//	continuous-variable: MSRPOPL ⊆ IP; MSRPOPLEX ⊆ MSRPOPL;
//	            observations only for MSRPOPL∖MSRPOPLEX
//	cohort:     IP
//
// For episode-based groups each unit (episode) is judged on its own.
// raw is aligned with g.Populations.
func ApplyRules(g *Group, raw []RawPopulation) GroupResult {
	n := len(g.Populations)
	sets := make([]unitSet, n)
	for i := range raw {
		if i < n {
			sets[i] = newUnitSet(raw[i].Members)
		}
	}
	idx := func(code string) int {
		for i, p := range g.Populations {
			if p.Code == code {
				return i
			}
		}
		return -1
	}
	byID := func(id string) int {
		if id == "" {
			return -1
		}
		for i, p := range g.Populations {
			if p.ID == id {
				return i
			}
		}
		return -1
	}
	// parentIP is the initial population a population is drawn from:
	// its criteriaReference when it names one, else the first.
	parentIP := func(i int) unitSet {
		if j := byID(g.Populations[i].CriteriaReference); j >= 0 && g.Populations[j].Code == InitialPopulation {
			return sets[j]
		}
		if j := idx(InitialPopulation); j >= 0 {
			return sets[j]
		}
		return nil
	}
	get := func(code string) unitSet {
		if j := idx(code); j >= 0 {
			return sets[j]
		}
		return nil
	}
	set := func(code string, s unitSet) {
		if j := idx(code); j >= 0 {
			sets[j] = s
		}
	}
	switch g.Scoring {
	case Proportion:
		if j := idx(Denominator); j >= 0 {
			sets[j] = sets[j].intersect(parentIP(j))
		}
		den := get(Denominator)
		set(DenominatorExclusion, get(DenominatorExclusion).intersect(den))
		denex := get(DenominatorExclusion)
		set(Numerator, get(Numerator).intersect(den).minus(denex))
		num := get(Numerator)
		set(NumeratorExclusion, get(NumeratorExclusion).intersect(num))
		set(DenominatorException, get(DenominatorException).intersect(den).minus(denex).minus(num))
	case Ratio:
		if j := idx(Denominator); j >= 0 {
			sets[j] = sets[j].intersect(parentIP(j))
		}
		if j := idx(Numerator); j >= 0 {
			sets[j] = sets[j].intersect(parentIP(j))
		}
		set(DenominatorExclusion, get(DenominatorExclusion).intersect(get(Denominator)))
		set(NumeratorExclusion, get(NumeratorExclusion).intersect(get(Numerator)))
		// Ratio measures have no exceptions; anything given is ignored.
		set(DenominatorException, nil)
	case ContinuousVariable:
		if j := idx(MeasurePopulation); j >= 0 {
			sets[j] = sets[j].intersect(parentIP(j))
		}
		set(MeasurePopulationExclusion, get(MeasurePopulationExclusion).intersect(get(MeasurePopulation)))
	case Cohort:
	}
	out := GroupResult{Populations: make([]PopulationResult, n)}
	for i, p := range g.Populations {
		pr := PopulationResult{Code: p.Code, ID: p.ID}
		if p.Code == MeasureObservation {
			eligible := observed(g, i, sets, idx)
			for _, o := range raw[i].Observations {
				if eligible.has(o.Unit) && !math.IsNaN(o.Value) {
					pr.Observations = append(pr.Observations, o)
					pr.Members = append(pr.Members, o.Unit)
				}
			}
		} else {
			pr.Members = sets[i].members()
		}
		out.Populations[i] = pr
	}
	return out
}

// ObservedUnits returns the units a measure-observation population i may
// observe, given the other populations' raw criteria results; the
// evaluator uses it to call observation functions only where they count.
func ObservedUnits(g *Group, raw []RawPopulation, i int) []string {
	r := ApplyRules(g, raw)
	idx := func(code string) int {
		for j, p := range g.Populations {
			if p.Code == code {
				return j
			}
		}
		return -1
	}
	sets := make([]unitSet, len(r.Populations))
	for j := range r.Populations {
		sets[j] = newUnitSet(r.Populations[j].Members)
	}
	return observed(g, i, sets, idx).members()
}

// observed is the set a measure observation applies to: the population its
// criteriaReference names (less its exclusion), else the measure population
// less its exclusions (continuous variable).
func observed(g *Group, i int, sets []unitSet, idx func(string) int) unitSet {
	ref := g.Populations[i].CriteriaReference
	target := -1
	for j, p := range g.Populations {
		if ref != "" && p.ID == ref {
			target = j
		}
	}
	if target < 0 {
		target = idx(MeasurePopulation)
	}
	if target < 0 {
		return nil
	}
	s := sets[target]
	switch g.Populations[target].Code {
	case MeasurePopulation:
		if j := idx(MeasurePopulationExclusion); j >= 0 {
			s = s.minus(sets[j])
		}
	case Numerator:
		if j := idx(NumeratorExclusion); j >= 0 {
			s = s.minus(sets[j])
		}
	case Denominator:
		if j := idx(DenominatorExclusion); j >= 0 {
			s = s.minus(sets[j])
		}
	}
	return s
}

// unitSet is a small ordered set of unit keys; a patient has few episodes,
// so slices beat maps here.
type unitSet []string

func newUnitSet(m []string) unitSet {
	if len(m) == 0 {
		return nil
	}
	out := make(unitSet, 0, len(m))
	for _, u := range m {
		if !out.has(u) {
			out = append(out, u)
		}
	}
	return out
}

func (s unitSet) has(u string) bool {
	for _, x := range s {
		if x == u {
			return true
		}
	}
	return false
}

func (s unitSet) intersect(o unitSet) unitSet {
	var out unitSet
	for _, u := range s {
		if o.has(u) {
			out = append(out, u)
		}
	}
	return out
}

func (s unitSet) minus(o unitSet) unitSet {
	var out unitSet
	for _, u := range s {
		if !o.has(u) {
			out = append(out, u)
		}
	}
	return out
}

func (s unitSet) members() []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

// Aggregate applies a cqfm-aggregateMethod to observation values.
// Unknown or empty methods sum, the IG default for continuous variables
// without an explicit method. ok is false when there is nothing to aggregate.
func Aggregate(method string, vals []float64) (v float64, ok bool) {
	if len(vals) == 0 {
		if method == "count" {
			return 0, true
		}
		return 0, false
	}
	switch method {
	case "count":
		return float64(len(vals)), true
	case "average", "mean":
		s := 0.0
		for _, x := range vals {
			s += x
		}
		return s / float64(len(vals)), true
	case "median":
		c := append([]float64(nil), vals...)
		sort.Float64s(c)
		m := len(c) / 2
		if len(c)%2 == 1 {
			return c[m], true
		}
		return (c[m-1] + c[m]) / 2, true
	case "min", "minimum":
		m := vals[0]
		for _, x := range vals[1:] {
			m = math.Min(m, x)
		}
		return m, true
	case "max", "maximum":
		m := vals[0]
		for _, x := range vals[1:] {
			m = math.Max(m, x)
		}
		return m, true
	default:
		s := 0.0
		for _, x := range vals {
			s += x
		}
		return s, true
	}
}

// Score computes a group's measure score from population counts and
// observations (summed over patients, or of one patient). ok is false when
// the score is undefined (empty denominator, cohort scoring).
func Score(g *Group, count func(code string) int, observations func(popIndex int) []float64) (float64, bool) {
	switch g.Scoring {
	case Proportion:
		den := count(Denominator) - count(DenominatorExclusion) - count(DenominatorException)
		if den <= 0 {
			return 0, false
		}
		return float64(count(Numerator)-count(NumeratorExclusion)) / float64(den), true
	case Ratio:
		var numObs, denObs = -1, -1
		for i, p := range g.Populations {
			if p.Code != MeasureObservation {
				continue
			}
			switch targetCode(g, p.CriteriaReference) {
			case Numerator:
				numObs = i
			case Denominator:
				denObs = i
			}
		}
		if numObs >= 0 && denObs >= 0 {
			n, okN := Aggregate(g.Populations[numObs].AggregateMethod, observations(numObs))
			d, okD := Aggregate(g.Populations[denObs].AggregateMethod, observations(denObs))
			if !okN || !okD || d == 0 {
				return 0, false
			}
			return n / d, true
		}
		den := count(Denominator) - count(DenominatorExclusion)
		if den <= 0 {
			return 0, false
		}
		return float64(count(Numerator)-count(NumeratorExclusion)) / float64(den), true
	case ContinuousVariable:
		for i, p := range g.Populations {
			if p.Code == MeasureObservation {
				return Aggregate(p.AggregateMethod, observations(i))
			}
		}
	}
	return 0, false
}

func targetCode(g *Group, id string) string {
	for _, p := range g.Populations {
		if p.ID == id {
			return p.Code
		}
	}
	return ""
}
