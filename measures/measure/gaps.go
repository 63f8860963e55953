package measure

// GapStatus is a DEQM gaps-in-care status
// (http://hl7.org/fhir/us/davinci-deqm/CodeSystem/gaps-status).
type GapStatus string

// Gap statuses.
const (
	OpenGap       GapStatus = "open-gap"
	ClosedGap     GapStatus = "closed-gap"
	NotApplicable GapStatus = "not-applicable"
)

// Gap derives a patient's care-gap status for one proportion group
// (DEQM; reference logic fqm-execution Calculator.ts): with improvement
// notation "increase" a unit in the denominator, not excluded or excepted,
// and not in the numerator is an open gap and a numerator unit a closed
// one; with "decrease" (inverse measures such as HbA1c > 9 %) the numerator
// is the gap. For episode-based groups the patient has an open gap when any
// episode has one. Patients outside the denominator (or excluded, or in a
// group that is not proportion-scored) are not applicable.
func Gap(g *Group, r *GroupResult) GapStatus {
	if g.Scoring != Proportion || r == nil {
		return NotApplicable
	}
	pop := func(code string) *PopulationResult {
		for i := range r.Populations {
			if r.Populations[i].Code == code {
				return &r.Populations[i]
			}
		}
		return &PopulationResult{}
	}
	den, denex, denexcep, num, numex := pop(Denominator), pop(DenominatorExclusion), pop(DenominatorException), pop(Numerator), pop(NumeratorExclusion)
	status := NotApplicable
	for _, u := range den.Members {
		if denex.Has(u) || denexcep.Has(u) || numex.Has(u) {
			continue
		}
		inNum := num.Has(u)
		open := !inNum
		if g.ImprovementNotation == "decrease" {
			open = inNum
		}
		if open {
			return OpenGap
		}
		status = ClosedGap
	}
	return status
}
