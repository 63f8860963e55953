package interaction

// summaryElements lists, per resource type, the top-level elements the R4
// specification marks as summary (Σ) for _summary=true, besides the ones
// every resource keeps (resourceType, id, meta, implicitRules,
// modifierExtension). Types not listed here answer _summary=true with a
// 400 rather than guess.
var summaryElements = map[string][]string{
	"Group":        {"identifier", "active", "type", "actual", "code", "name", "quantity", "managingEntity"},
	"Patient":      {"identifier", "active", "name", "telecom", "gender", "birthDate", "deceased", "address", "managingOrganization", "link"},
	"Practitioner": {"identifier", "active", "name", "telecom", "address", "gender", "birthDate"},
	"Organization": {"identifier", "active", "type", "name", "partOf"},
	"Coverage": {"identifier", "status", "type", "policyHolder", "subscriber", "subscriberId", "beneficiary",
		"dependent", "relationship", "period", "payor", "class", "order", "network"},
	"Observation": {"identifier", "basedOn", "partOf", "status", "code", "subject", "focus", "encounter",
		"effective", "issued", "performer", "value", "hasMember", "derivedFrom", "component"},
	"Encounter": {"identifier", "status", "class", "type", "serviceType", "priority", "subject", "episodeOfCare",
		"basedOn", "participant", "appointment", "period", "length", "reasonCode", "reasonReference",
		"diagnosis", "account", "serviceProvider", "partOf"},
	"Condition": {"identifier", "clinicalStatus", "verificationStatus", "category", "severity", "code",
		"bodySite", "subject", "encounter", "onset", "abatement", "recordedDate"},
}

// SummaryElements returns the summary elements of typ and whether the
// server knows them.
func SummaryElements(typ string) ([]string, bool) {
	e, ok := summaryElements[typ]
	return e, ok
}
