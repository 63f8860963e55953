package equity

import (
	"errors"
	"fmt"

	"github.com/equitas/equitas/measures/measure"
)

// ErrEpisodeBased is returned for groups whose units are episodes: equity
// strata count patients, so only patient-based groups translate to Records.
var ErrEpisodeBased = errors.New("equity: episode-based group; only patient-based groups are stratified")

// RecordFromResult turns one patient's result for group g of a measure
// into a Record carrying attrs. The result's populations are already
// after the population rules (exclusions, exceptions) were applied.
func RecordFromResult(g *measure.Group, res *measure.PatientResult, attrs *Attributes) (Record, error) {
	if g.IsEpisodeBased() {
		return Record{}, ErrEpisodeBased
	}
	if res.Err != nil {
		return Record{}, fmt.Errorf("equity: patient %s was not evaluated: %w", res.PatientID, res.Err)
	}
	if g.Index < 0 || g.Index >= len(res.Groups) {
		return Record{}, fmt.Errorf("equity: patient %s has no result for group %d", res.PatientID, g.Index)
	}
	gr := res.Groups[g.Index]
	r := Record{Attributes: attrs}
	for i, p := range g.Populations {
		if i >= len(gr.Populations) || !gr.Populations[i].Has(measure.PatientUnit) {
			continue
		}
		setPopulation(&r, p.Code)
	}
	return r, nil
}

// AppendRecords appends the records of one patient's result for group g:
// one for a patient-based group, one per episode (unit) for an
// episode-based group, each carrying attrs. Patients in no population add
// nothing.
func AppendRecords(dst []Record, g *measure.Group, res *measure.PatientResult, attrs *Attributes) ([]Record, error) {
	if !g.IsEpisodeBased() {
		r, err := RecordFromResult(g, res, attrs)
		if err != nil || !(r.InitialPopulation || r.Denominator) {
			return dst, err
		}
		return append(dst, r), nil
	}
	if res.Err != nil {
		return dst, fmt.Errorf("equity: patient %s was not evaluated: %w", res.PatientID, res.Err)
	}
	if g.Index < 0 || g.Index >= len(res.Groups) {
		return dst, fmt.Errorf("equity: patient %s has no result for group %d", res.PatientID, g.Index)
	}
	gr := res.Groups[g.Index]
	var units []string
	seen := map[string]bool{}
	for _, p := range gr.Populations {
		for _, u := range p.Members {
			if !seen[u] {
				seen[u] = true
				units = append(units, u)
			}
		}
	}
	for _, u := range units {
		r := Record{Attributes: attrs}
		for i, p := range g.Populations {
			if i >= len(gr.Populations) || !gr.Populations[i].Has(u) {
				continue
			}
			setPopulation(&r, p.Code)
		}
		if r.InitialPopulation || r.Denominator {
			dst = append(dst, r)
		}
	}
	return dst, nil
}

func setPopulation(r *Record, code string) {
	switch code {
	case measure.InitialPopulation:
		r.InitialPopulation = true
	case measure.Denominator:
		r.Denominator = true
	case measure.DenominatorExclusion, measure.DenominatorException:
		r.Exclusion = true
	case measure.Numerator:
		r.Numerator = true
	case measure.NumeratorExclusion:
		r.NumeratorExclusion = true
	}
}
