package synth

import (
	"slices"
	"time"
)

// Rate is a measure population count pair.
type Rate struct {
	Denominator int `json:"denominator"`
	Numerator   int `json:"numerator"`
}

// Value is Numerator/Denominator (0 for an empty denominator).
func (r Rate) Value() float64 {
	if r.Denominator == 0 {
		return 0
	}
	return float64(r.Numerator) / float64(r.Denominator)
}

// MeasureTruth is what a correct engine reports for one measure on the
// generated population: the denominator (initial population, there are no
// exclusions in the data) and numerator, overall and per stratum. Strata
// are keyed by the OMB race code (RaceMultiple for two races, UNK, ASKU),
// the ethnicity code (UNK, ASKU) and the BCP-47 language code.
type MeasureTruth struct {
	Overall     Rate             `json:"overall"`
	ByRace      map[string]*Rate `json:"byRace"`
	ByEthnicity map[string]*Rate `json:"byEthnicity"`
	ByLanguage  map[string]*Rate `json:"byLanguage"`
}

// Truth is the known answer for a generated population.
type Truth struct {
	MeasurementPeriod string `json:"measurementPeriod"`
	// CMS165 Controlling High Blood Pressure (higher is better).
	CMS165 MeasureTruth `json:"CMS165"`
	// CMS122 Diabetes: Glycemic Status > 9% (inverse: lower is better);
	// the numerator includes diabetics without a result in the period.
	CMS122 MeasureTruth `json:"CMS122"`
	// Inpatient stays in the whole window and those followed by another
	// admission within 30 days of discharge.
	InpatientStays int `json:"inpatientStays"`
	Readmissions30 int `json:"readmissions30"`
	// Patients per stratum.
	Race      map[string]int `json:"race"`
	Ethnicity map[string]int `json:"ethnicity"`
	Language  map[string]int `json:"language"`
}

func newMeasureTruth() MeasureTruth {
	return MeasureTruth{ByRace: map[string]*Rate{}, ByEthnicity: map[string]*Rate{}, ByLanguage: map[string]*Rate{}}
}

func newTruth(year int) *Truth {
	return &Truth{
		MeasurementPeriod: time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Format("2006"),
		CMS165:            newMeasureTruth(),
		CMS122:            newMeasureTruth(),
		Race:              map[string]int{}, Ethnicity: map[string]int{}, Language: map[string]int{},
	}
}

func (m *MeasureTruth) count(p *person, num bool) {
	for _, r := range []*Rate{&m.Overall, stratum(m.ByRace, p.race), stratum(m.ByEthnicity, p.eth), stratum(m.ByLanguage, p.lang)} {
		r.Denominator++
		if num {
			r.Numerator++
		}
	}
}

func stratum(m map[string]*Rate, k string) *Rate {
	r, ok := m[k]
	if !ok {
		r = &Rate{}
		m[k] = r
	}
	return r
}

// add evaluates the two measures for one patient the way their CQL does,
// from the data that was emitted.
func (t *Truth) add(g *gen, p *person, evs []event, f *facts) {
	t.Race[p.race]++
	t.Ethnicity[p.eth]++
	t.Language[p.lang]++

	qualifying := slices.ContainsFunc(evs, func(e event) bool {
		return e.kind.qualifying() && !e.cancelled && !e.start.Before(g.mpStart) && e.end.Before(g.mpEnd)
	})
	if qualifying && p.htn && p.ageMP >= 18 && p.ageMP <= 85 && p.htnOnset.Before(g.mpStart.AddDate(0, 6, 0)) {
		// Lowest systolic and diastolic on the most recent day with a reading.
		var day time.Time
		for _, b := range f.bp {
			if b.day.After(day) {
				day = b.day
			}
		}
		minSys, minDia := 1000, 1000
		for _, b := range f.bp {
			if b.day.Equal(day) {
				minSys, minDia = min(minSys, b.sys), min(minDia, b.dia)
			}
		}
		t.CMS165.count(p, len(f.bp) > 0 && minSys < 140 && minDia < 90)
	}
	if qualifying && p.dm && p.ageMP >= 18 && p.ageMP <= 75 && p.dmOnset.Before(g.mpEnd) {
		num := len(f.a1c) == 0
		if !num {
			var day time.Time
			for _, a := range f.a1c {
				if a.day.After(day) {
					day = a.day
				}
			}
			lowest := 100.0
			for _, a := range f.a1c {
				if a.day.Equal(day) {
					lowest = min(lowest, a.value)
				}
			}
			num = lowest > 9
		}
		t.CMS122.count(p, num)
	}
	for i, e := range evs {
		if e.kind != evInpatient {
			continue
		}
		t.InpatientStays++
		for _, next := range evs[i+1:] {
			if next.kind == evInpatient && !next.start.Before(e.end) && next.start.Sub(e.end) <= 30*24*time.Hour {
				t.Readmissions30++
				break
			}
		}
	}
}
