package equity

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// UnmarshalJSON implements json.Unmarshaler; null reads as NaN.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = Decimal(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("equity: decimal: %w", err)
	}
	*d = Decimal(f)
	return nil
}

// ErrPriorReport is returned for a supplied prior report that cannot be
// used.
var ErrPriorReport = errors.New("equity: unusable prior report")

// ParseDashboard reads a dashboard document (DashboardJSON's output), e.g.
// last year's report supplied as the prior period.
func ParseDashboard(b []byte) (*Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPriorReport, err)
	}
	if d.Version != 1 || d.Period.Start == "" || d.Period.End == "" {
		return nil, fmt.Errorf("%w: not a version 1 dashboard report with a period", ErrPriorReport)
	}
	return &d, nil
}

// priorStrata rebuilds, from a supplied report, the stratifications of
// the measure with id or canonical: one per stratifier code. Only released
// counts come back; privacy-suppressed strata are absent (their
// year-over-year cells stay empty, as they would be anyway).
func priorStrata(d *Dashboard, id, canonical string) (map[string]Stratification, error) {
	for _, m := range d.Measures {
		if m.ID != id && (canonical == "" || m.Canonical != canonical) {
			continue
		}
		out := map[string]Stratification{}
		for _, ds := range m.Stratifiers {
			s := Stratification{Overall: Counts{InitialPopulation: m.Overall.InitialPopulation, Denominator: m.Overall.Denominator,
				Exclusions: m.Overall.Exclusions, Numerator: m.Overall.Numerator}}
			for _, c := range ds.Dimensions {
				dim, err := ParseDimension(c)
				if err != nil {
					return nil, fmt.Errorf("%w: measure %s: %w", ErrPriorReport, id, err)
				}
				s.Dimensions = append(s.Dimensions, dim)
			}
			for _, st := range ds.Strata {
				if st.Denominator == nil || st.Numerator == nil {
					continue
				}
				if len(st.Codes) != len(s.Dimensions) || *st.Numerator < 0 || *st.Numerator > *st.Denominator {
					return nil, fmt.Errorf("%w: measure %s stratum %q is inconsistent", ErrPriorReport, id, st.Code)
				}
				vals := append([]string(nil), st.Codes...)
				s.Strata = append(s.Strata, Stratum{Values: vals, Missing: missing(vals),
					Counts: Counts{InitialPopulation: *st.Denominator, Denominator: *st.Denominator, Numerator: *st.Numerator}})
			}
			SortStrata(s.Strata)
			out[stratifierName(s.Dimensions)] = s
		}
		return out, nil
	}
	return nil, nil
}
