package equity

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/measures/patientsource"
)

// Observation codes read for the SOGI and disability stratifiers (§5.2,
// §5.6). Disability status is the HHS/ACS six-question panel (LOINC
// 69856-3 … 69861-3) or the CUBS disability status (89571-4), or any
// Observation in the US Core disability-status category.
const (
	loincGenderIdentity   = "76691-5"
	systemUSCoreCategory  = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
	categoryDisability    = "disability-status"
	loincAnswerYes        = "LA33-6"
	loincAnswerNo         = "LA32-8"
	disabilityYes         = "disabled"
	disabilityNo          = "not-disabled"
	dataAbsentAskDeclined = "asked-declined"
)

var disabilityCodes = map[string]bool{"69856-3": true, "69857-1": true, "69858-9": true, "69859-7": true,
	"69860-5": true, "69861-3": true, "89571-4": true}

// CompartmentAttributes derives a patient's equity attributes from its
// whole compartment in one pass: the Patient resource (race, ethnicity,
// language, sex, birth date, address), the Coverage in force at at (payer
// category, else the latest active one), and the latest sexual
// orientation, gender identity and disability Observations on or before at
// (a gender identity Observation wins over the Patient extension). The
// attributed provider is the first generalPractitioner; callers with
// attribution lists overwrite it.
func CompartmentAttributes(p *patientsource.Patient, h RaceHierarchy, at time.Time) (Attributes, error) {
	pats := p.Resources["Patient"]
	if len(pats) == 0 {
		return Attributes{}, fmt.Errorf("%w: patient %s has no Patient resource", ErrNotPatient, p.ID)
	}
	a, err := PatientAttributes(pats[0], h)
	if err != nil {
		return Attributes{}, err
	}
	day := ""
	if !at.IsZero() {
		day = at.UTC().Format(time.DateOnly)
	}
	a.Payer = coveragePayer(p.Resources["Coverage"], day)
	var so, gi, dis latest
	for _, raw := range p.Resources["Observation"] {
		obs := gjson.ParseBytes(raw)
		if st := obs.Get("status").String(); st == "entered-in-error" || st == "cancelled" {
			continue
		}
		when := obs.Get("effectiveDateTime").String()
		if when == "" {
			when = obs.Get("effectivePeriod.start").String()
		}
		if when == "" {
			when = obs.Get("issued").String()
		}
		if day != "" && when != "" && when[:min(len(when), 10)] > day {
			continue // recorded after the period: not what was known then
		}
		codes := obs.Get("code.coding.#.code").Array()
		has := func(set func(string) bool) bool {
			for _, c := range codes {
				if set(c.String()) {
					return true
				}
			}
			return false
		}
		switch {
		case has(func(c string) bool { return c == loincSexualOrient }):
			so.offer(when, answer(obs))
		case has(func(c string) bool { return c == loincGenderIdentity }):
			gi.offer(when, answer(obs))
		case has(func(c string) bool { return disabilityCodes[c] }) ||
			obs.Get(`category.#.coding.#(code=="`+categoryDisability+`")`).Exists():
			dis.offer(when, disabilityAnswer(obs))
		}
	}
	if so.value != "" {
		a.SexualOrientation = so.value
	}
	if gi.value != "" {
		a.GenderIdentity = gi.value
	}
	if dis.value != "" {
		a.Disability = dis.value
	}
	return a, nil
}

// latest keeps the value of the most recent observation offered.
type latest struct{ when, value string }

func (l *latest) offer(when, value string) {
	if value == "" {
		return
	}
	if l.value == "" || when >= l.when {
		l.when, l.value = when, value
	}
}

// answer is the coded answer of a SOGI Observation: the answer code,
// AskedDeclined for a declined or ASKU answer, Unknown for another null
// flavour.
func answer(obs gjson.Result) string {
	v := obs.Get("valueCodeableConcept.coding.0")
	switch {
	case obs.Get("dataAbsentReason.coding.0.code").String() == dataAbsentAskDeclined || v.Get("code").String() == AskedDeclined:
		return AskedDeclined
	case v.Get("system").String() == SystemNullFlavor:
		return Unknown
	case v.Get("code").String() != "":
		return v.Get("code").String()
	}
	return Unknown
}

// disabilityAnswer reduces a disability Observation to disabled,
// not-disabled, asked-declined or unknown: a yes (LOINC LA33-6, true) to
// any of the panel's questions (members or components) means disabled.
func disabilityAnswer(obs gjson.Result) string {
	if obs.Get("dataAbsentReason.coding.0.code").String() == dataAbsentAskDeclined {
		return AskedDeclined
	}
	yes, no := false, false
	look := func(r gjson.Result) {
		c := r.Get("valueCodeableConcept.coding.0.code").String()
		b := r.Get("valueBoolean")
		switch {
		case c == loincAnswerYes || (b.Exists() && b.Bool()):
			yes = true
		case c == loincAnswerNo || (b.Exists() && !b.Bool()):
			no = true
		case c == AskedDeclined:
		}
	}
	look(obs)
	obs.Get("component").ForEach(func(_, c gjson.Result) bool { look(c); return true })
	switch {
	case yes:
		return disabilityYes
	case no:
		return disabilityNo
	case obs.Get("valueCodeableConcept.coding.0.code").String() == AskedDeclined:
		return AskedDeclined
	}
	return Unknown
}

// coveragePayer is the payer category (first digit of the Source of
// Payment Typology code) of the active Coverage in force on day, else of
// the latest-starting active Coverage, else Unknown.
func coveragePayer(covs []json.RawMessage, day string) string {
	best, bestStart, inForce := "", "", false
	for _, raw := range covs {
		c := gjson.ParseBytes(raw)
		if st := c.Get("status").String(); st != "" && st != "active" {
			continue
		}
		_, cat, err := PayerCategory(raw)
		if err != nil {
			continue
		}
		start, end := c.Get("period.start").String(), c.Get("period.end").String()
		covers := day == "" || ((start == "" || start[:min(len(start), 10)] <= day) && (end == "" || end[:min(len(end), 10)] >= day))
		switch {
		case covers && !inForce, covers == inForce && start >= bestStart:
			best, bestStart, inForce = cat, start, covers
		}
	}
	if best == "" {
		return Unknown
	}
	return best
}

// coverageDisplay names the Source of Payment Typology top-level
// categories used as payer strata.
var payerDisplay = map[string]string{"1": "Medicare", "2": "Medicaid", "3": "Other government", "4": "Department of Corrections",
	"5": "Private health insurance", "6": "Blue Cross/Blue Shield", "7": "Managed care, unspecified", "8": "No payment from an organization",
	"9": "Miscellaneous/other"}

// StratumDisplay is a human-readable label for a stratum value of d (the
// dashboard's axis labels).
func StratumDisplay(d Dimension, v string) string {
	switch {
	case v == Unknown:
		return "Unknown"
	case v == AskedDeclined:
		return "Asked but no answer"
	case v == TwoOrMore:
		return "Two or more races"
	case v == MultiracialMultiethnic:
		return "Multiracial and/or multiethnic"
	case d == DimPayer && payerDisplay[v] != "":
		return payerDisplay[v]
	case ombDisplay[v] != "" && (d == DimRace || d == DimEthnicity || d == DimRaceEthnicity):
		return ombDisplay[v]
	case d == DimSVI:
		return strings.Replace(strings.ToUpper(v), "SVI-Q", "SVI quartile ", 1)
	}
	return v
}
