// Package searchparam is the registry of FHIR R4 search parameters Equitas
// indexes, and the semantics of matching them: value extraction from stored
// JSON at write time, parsing of search values, and the comparison rules of
// the FHIR R4 search specification (token, reference, date ranges with
// prefixes, string prefix/exact/contains, :missing, :not).
//
// The registry is deliberately static and read-only: the store derives its
// index keys from it, so changing a definition means reindexing.
package searchparam

import (
	"sort"
	"strings"
)

// Parameter types.
const (
	Token     = "token"
	Reference = "reference"
	Date      = "date"
	String    = "string"
	Number    = "number"
	Quantity  = "quantity"
	URI       = "uri"
	// Composite is Group's characteristic-value: a code$value pair, both
	// tokens, matched within the same characteristic element.
	Composite = "composite"
)

// Def is one search parameter of a resource type.
type Def struct {
	Name string
	Type string // token|reference|date|string|number|quantity|uri|composite
	// Paths are dot-separated element paths from the resource root; an
	// element ending in "[x]" is a choice element (effective[x] matches
	// effectiveDateTime, effectivePeriod, ...). Arrays are walked
	// transparently.
	Paths []string
	// Targets restricts a reference parameter to these resource types (empty
	// = any type).
	Targets []string
	// System is the implicit code system of a token parameter on a `code`
	// element (Patient.gender: http://hl7.org/fhir/administrative-gender),
	// so system|code searches match it.
	System string
}

// registry is built once and never mutated; For and Lookup return copies.
var registry = build()

// For returns the parameters of a resource type sorted by name, including
// the ones every type has (_id, _lastUpdated, _tag, _profile, _security).
func For(resourceType string) []Def {
	m := registry[resourceType]
	out := make([]Def, 0, len(m)+len(common))
	for _, d := range common {
		out = append(out, d)
	}
	for _, d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns one parameter definition.
func Lookup(resourceType, name string) (Def, bool) {
	for _, d := range common {
		if d.Name == name {
			return d, true
		}
	}
	d, ok := registry[resourceType][name]
	return d, ok
}

// Types returns the resource types that have type-specific parameters.
func Types() []string {
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

var common = []Def{
	{Name: "_id", Type: Token, Paths: []string{"id"}},
	{Name: "_lastUpdated", Type: Date, Paths: []string{"meta.lastUpdated"}},
	{Name: "_profile", Type: URI, Paths: []string{"meta.profile"}},
	{Name: "_security", Type: Token, Paths: []string{"meta.security"}},
	{Name: "_tag", Type: Token, Paths: []string{"meta.tag"}},
}

// p builds a Def from a compact spec: paths are separated by "|".
func p(name, typ, paths string, targets ...string) Def {
	return Def{Name: name, Type: typ, Paths: strings.Split(paths, "|"), Targets: targets}
}

// subjectPatient is the common pair "subject" (any) and "patient"
// (subject restricted to Patient).
func subjectPatient(path string) []Def {
	return []Def{p("subject", Reference, path), p("patient", Reference, path, "Patient")}
}

func build() map[string]map[string]Def {
	defs := map[string][]Def{
		"Patient": {
			p("identifier", Token, "identifier"),
			p("name", String, "name"),
			p("family", String, "name.family"),
			p("given", String, "name.given"),
			p("birthdate", Date, "birthDate"),
			p("gender", Token, "gender"),
			p("active", Token, "active"),
			p("general-practitioner", Reference, "generalPractitioner", "Organization", "Practitioner", "PractitionerRole"),
			p("organization", Reference, "managingOrganization", "Organization"),
			p("address", String, "address"),
			p("address-city", String, "address.city"),
			p("address-state", String, "address.state"),
			p("address-postalcode", String, "address.postalCode"),
			p("telecom", Token, "telecom"),
			p("death-date", Date, "deceasedDateTime"),
			p("link", Reference, "link.other"),
		},
		"Encounter": append(subjectPatient("subject"),
			p("date", Date, "period"),
			p("status", Token, "status"),
			p("class", Token, "class"),
			p("type", Token, "type"),
			p("identifier", Token, "identifier"),
			p("participant", Reference, "participant.individual"),
			p("practitioner", Reference, "participant.individual", "Practitioner"),
			p("service-provider", Reference, "serviceProvider", "Organization"),
			p("reason-code", Token, "reasonCode"),
			p("location", Reference, "location.location", "Location"),
			p("diagnosis", Reference, "diagnosis.condition"),
			p("episode-of-care", Reference, "episodeOfCare", "EpisodeOfCare"),
			p("length", Quantity, "length"),
		),
		"Condition": append(subjectPatient("subject"),
			p("code", Token, "code"),
			p("onset-date", Date, "onsetDateTime|onsetPeriod"),
			p("abatement-date", Date, "abatementDateTime|abatementPeriod"),
			p("recorded-date", Date, "recordedDate"),
			p("clinical-status", Token, "clinicalStatus"),
			p("verification-status", Token, "verificationStatus"),
			p("category", Token, "category"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("identifier", Token, "identifier"),
			p("asserter", Reference, "asserter"),
		),
		"Observation": append(subjectPatient("subject"),
			p("code", Token, "code"),
			p("date", Date, "effective[x]"),
			p("status", Token, "status"),
			p("category", Token, "category"),
			p("value-quantity", Quantity, "valueQuantity"),
			p("value-concept", Token, "valueCodeableConcept"),
			p("value-string", String, "valueString"),
			p("value-date", Date, "valueDateTime|valuePeriod"),
			p("combo-code", Token, "code|component.code"),
			p("component-code", Token, "component.code"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("performer", Reference, "performer"),
			p("identifier", Token, "identifier"),
			p("has-member", Reference, "hasMember"),
			p("derived-from", Reference, "derivedFrom"),
		),
		"Procedure": append(subjectPatient("subject"),
			p("code", Token, "code"),
			p("date", Date, "performed[x]"),
			p("status", Token, "status"),
			p("category", Token, "category"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("performer", Reference, "performer.actor"),
			p("identifier", Token, "identifier"),
			p("reason-code", Token, "reasonCode"),
		),
		"MedicationRequest": append(subjectPatient("subject"),
			p("code", Token, "medicationCodeableConcept"),
			p("medication", Reference, "medicationReference", "Medication"),
			p("authoredon", Date, "authoredOn"),
			p("status", Token, "status"),
			p("intent", Token, "intent"),
			p("category", Token, "category"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("requester", Reference, "requester"),
			p("identifier", Token, "identifier"),
		),
		"MedicationAdministration": append(subjectPatient("subject"),
			p("code", Token, "medicationCodeableConcept"),
			p("medication", Reference, "medicationReference", "Medication"),
			p("effective-time", Date, "effective[x]"),
			p("status", Token, "status"),
			p("context", Reference, "context"),
			p("performer", Reference, "performer.actor"),
			p("identifier", Token, "identifier"),
		),
		"MedicationDispense": append(subjectPatient("subject"),
			p("code", Token, "medicationCodeableConcept"),
			p("medication", Reference, "medicationReference", "Medication"),
			p("whenhandedover", Date, "whenHandedOver"),
			p("whenprepared", Date, "whenPrepared"),
			p("status", Token, "status"),
			p("identifier", Token, "identifier"),
			p("prescription", Reference, "authorizingPrescription", "MedicationRequest"),
		),
		"MedicationStatement": append(subjectPatient("subject"),
			p("code", Token, "medicationCodeableConcept"),
			p("medication", Reference, "medicationReference", "Medication"),
			p("effective", Date, "effective[x]"),
			p("status", Token, "status"),
			p("category", Token, "category"),
			p("identifier", Token, "identifier"),
		),
		"Immunization": {
			p("patient", Reference, "patient", "Patient"),
			p("vaccine-code", Token, "vaccineCode"),
			p("date", Date, "occurrenceDateTime"),
			p("status", Token, "status"),
			p("identifier", Token, "identifier"),
			p("location", Reference, "location", "Location"),
			p("performer", Reference, "performer.actor"),
			p("lot-number", String, "lotNumber"),
		},
		"ServiceRequest": append(subjectPatient("subject"),
			p("code", Token, "code"),
			p("authored", Date, "authoredOn"),
			p("occurrence", Date, "occurrence[x]"),
			p("status", Token, "status"),
			p("intent", Token, "intent"),
			p("category", Token, "category"),
			p("requester", Reference, "requester"),
			p("performer", Reference, "performer"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("identifier", Token, "identifier"),
		),
		"Claim": {
			p("patient", Reference, "patient", "Patient"),
			p("created", Date, "created"),
			p("status", Token, "status"),
			p("use", Token, "use"),
			// type is not an R4 Claim parameter; Equitas adds it so claims
			// can be selected by claim type like Encounter and Coverage.
			p("type", Token, "type"),
			p("provider", Reference, "provider"),
			p("insurer", Reference, "insurer", "Organization"),
			p("identifier", Token, "identifier"),
			p("encounter", Reference, "item.encounter", "Encounter"),
			p("priority", Token, "priority"),
			p("care-team", Reference, "careTeam.provider"),
			p("facility", Reference, "facility", "Location"),
			p("enterer", Reference, "enterer"),
			p("payee", Reference, "payee.party"),
		},
		"ExplanationOfBenefit": {
			p("patient", Reference, "patient", "Patient"),
			p("created", Date, "created"),
			p("status", Token, "status"),
			// type: an Equitas addition, as for Claim.
			p("type", Token, "type"),
			p("provider", Reference, "provider"),
			p("identifier", Token, "identifier"),
			p("claim", Reference, "claim", "Claim"),
			p("coverage", Reference, "insurance.coverage", "Coverage"),
			p("care-team", Reference, "careTeam.provider"),
			p("encounter", Reference, "item.encounter", "Encounter"),
			p("facility", Reference, "facility", "Location"),
			p("payee", Reference, "payee.party"),
			p("enterer", Reference, "enterer"),
			p("disposition", String, "disposition"),
		},
		"Coverage": {
			p("beneficiary", Reference, "beneficiary", "Patient"),
			p("patient", Reference, "beneficiary", "Patient"),
			p("payor", Reference, "payor", "Organization", "Patient", "RelatedPerson"),
			p("subscriber", Reference, "subscriber", "Patient", "RelatedPerson"),
			p("policy-holder", Reference, "policyHolder", "Organization", "Patient", "RelatedPerson"),
			p("status", Token, "status"),
			p("type", Token, "type"),
			p("identifier", Token, "identifier"),
			p("class-type", Token, "class.type"),
			p("class-value", String, "class.value"),
			p("dependent", String, "dependent"),
			// period: an Equitas addition for attribution (coverage in force).
			p("period", Date, "period"),
		},
		"Group": {
			p("identifier", Token, "identifier"),
			p("characteristic", Token, "characteristic.code"),
			p("characteristic-value", Composite, "characteristic"),
			p("value", Token, "characteristic.value[x]"),
			p("exclude", Token, "characteristic.exclude"),
			p("member", Reference, "member.entity"),
			// name is not an R4 Group parameter; attribution lists are found by it.
			p("name", String, "name"),
			p("type", Token, "type"),
			p("actual", Token, "actual"),
			p("code", Token, "code"),
			p("managing-entity", Reference, "managingEntity"),
		},
		"Practitioner": {
			p("identifier", Token, "identifier"),
			p("name", String, "name"),
			p("family", String, "name.family"),
			p("given", String, "name.given"),
			p("active", Token, "active"),
			p("gender", Token, "gender"),
			p("telecom", Token, "telecom"),
			p("address", String, "address"),
		},
		"Organization": {
			p("identifier", Token, "identifier"),
			p("name", String, "name|alias"),
			p("active", Token, "active"),
			p("type", Token, "type"),
			p("partof", Reference, "partOf", "Organization"),
			p("address", String, "address"),
			p("endpoint", Reference, "endpoint", "Endpoint"),
		},
		"PractitionerRole": {
			p("identifier", Token, "identifier"),
			p("practitioner", Reference, "practitioner", "Practitioner"),
			p("organization", Reference, "organization", "Organization"),
			p("role", Token, "code"),
			p("specialty", Token, "specialty"),
			p("active", Token, "active"),
			p("location", Reference, "location", "Location"),
			p("endpoint", Reference, "endpoint", "Endpoint"),
			// name is not an R4 PractitionerRole parameter (the resource has
			// no name); Equitas matches the display of its practitioner and
			// organization references.
			p("name", String, "practitioner.display|organization.display"),
		},
		"Location": {
			p("identifier", Token, "identifier"),
			p("name", String, "name|alias"),
			p("address", String, "address"),
			p("status", Token, "status"),
			p("type", Token, "type"),
			p("organization", Reference, "managingOrganization", "Organization"),
			p("partof", Reference, "partOf", "Location"),
		},
		"AllergyIntolerance": {
			p("patient", Reference, "patient", "Patient"),
			p("code", Token, "code|reaction.substance"),
			p("clinical-status", Token, "clinicalStatus"),
			p("verification-status", Token, "verificationStatus"),
			p("category", Token, "category"),
			p("criticality", Token, "criticality"),
			p("date", Date, "recordedDate"),
			p("onset", Date, "reaction.onset"),
			p("identifier", Token, "identifier"),
			p("recorder", Reference, "recorder"),
			p("asserter", Reference, "asserter"),
		},
		"DiagnosticReport": append(subjectPatient("subject"),
			p("code", Token, "code"),
			p("date", Date, "effective[x]"),
			p("issued", Date, "issued"),
			p("status", Token, "status"),
			p("category", Token, "category"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("result", Reference, "result", "Observation"),
			p("performer", Reference, "performer"),
			p("identifier", Token, "identifier"),
		),
		"DeviceRequest": append(subjectPatient("subject"),
			p("code", Token, "codeCodeableConcept"),
			p("device", Reference, "codeReference", "Device"),
			p("authored-on", Date, "authoredOn"),
			p("event-date", Date, "occurrenceDateTime|occurrencePeriod"),
			p("status", Token, "status"),
			p("intent", Token, "intent"),
			p("requester", Reference, "requester"),
			p("performer", Reference, "performer"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("identifier", Token, "identifier"),
		),
		"Device": {
			p("patient", Reference, "patient", "Patient"),
			p("type", Token, "type"),
			p("status", Token, "status"),
			p("identifier", Token, "identifier"),
			p("organization", Reference, "owner", "Organization"),
		},
		"CarePlan": append(subjectPatient("subject"),
			p("status", Token, "status"),
			p("intent", Token, "intent"),
			p("category", Token, "category"),
			p("date", Date, "period"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("care-team", Reference, "careTeam", "CareTeam"),
			p("performer", Reference, "activity.detail.performer"),
			p("identifier", Token, "identifier"),
		),
		"CareTeam": append(subjectPatient("subject"),
			p("status", Token, "status"),
			p("category", Token, "category"),
			p("date", Date, "period"),
			p("participant", Reference, "participant.member"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("identifier", Token, "identifier"),
		),
		"Goal": append(subjectPatient("subject"),
			p("lifecycle-status", Token, "lifecycleStatus"),
			p("achievement-status", Token, "achievementStatus"),
			p("category", Token, "category"),
			p("start-date", Date, "startDate"),
			p("target-date", Date, "target.dueDate"),
			p("identifier", Token, "identifier"),
		),
		"Communication": append(subjectPatient("subject"),
			p("status", Token, "status"),
			p("category", Token, "category"),
			p("sent", Date, "sent"),
			p("received", Date, "received"),
			p("sender", Reference, "sender"),
			p("recipient", Reference, "recipient"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("identifier", Token, "identifier"),
		),
		"Task": {
			p("subject", Reference, "for"),
			p("patient", Reference, "for", "Patient"),
			p("focus", Reference, "focus"),
			p("status", Token, "status"),
			p("business-status", Token, "businessStatus"),
			p("intent", Token, "intent"),
			p("code", Token, "code"),
			p("authored-on", Date, "authoredOn"),
			p("modified", Date, "lastModified"),
			p("period", Date, "executionPeriod"),
			p("owner", Reference, "owner"),
			p("requester", Reference, "requester"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("identifier", Token, "identifier"),
		},
		"AdverseEvent": {
			p("subject", Reference, "subject"),
			p("date", Date, "date"),
			p("event", Token, "event"),
			p("actuality", Token, "actuality"),
			p("category", Token, "category"),
			p("seriousness", Token, "seriousness"),
			p("severity", Token, "severity"),
			p("recorder", Reference, "recorder"),
		},
		"DocumentReference": append(subjectPatient("subject"),
			p("type", Token, "type"),
			p("category", Token, "category"),
			p("date", Date, "date"),
			p("period", Date, "context.period"),
			p("status", Token, "status"),
			p("author", Reference, "author"),
			p("encounter", Reference, "context.encounter"),
			p("identifier", Token, "masterIdentifier|identifier"),
		),
		"Provenance": {
			p("target", Reference, "target"),
			p("patient", Reference, "target", "Patient"),
			p("recorded", Date, "recorded"),
			p("agent", Reference, "agent.who"),
			p("entity", Reference, "entity.what"),
			p("when", Date, "occurredDateTime|occurredPeriod"),
		},
		"RelatedPerson": {
			p("patient", Reference, "patient", "Patient"),
			p("identifier", Token, "identifier"),
			p("name", String, "name"),
			p("relationship", Token, "relationship"),
			p("active", Token, "active"),
		},
		"QuestionnaireResponse": append(subjectPatient("subject"),
			p("authored", Date, "authored"),
			p("status", Token, "status"),
			p("questionnaire", URI, "questionnaire"),
			p("author", Reference, "author"),
			p("encounter", Reference, "encounter", "Encounter"),
			p("identifier", Token, "identifier"),
		),
		"MeasureReport": {
			p("subject", Reference, "subject"),
			p("patient", Reference, "subject", "Patient"),
			p("measure", URI, "measure"),
			p("date", Date, "date"),
			p("period", Date, "period"),
			p("status", Token, "status"),
			p("reporter", Reference, "reporter"),
			p("evaluated-resource", Reference, "evaluatedResource"),
			p("identifier", Token, "identifier"),
		},
		"Measure": {
			p("url", URI, "url"),
			p("name", String, "name"),
			p("title", String, "title"),
			p("version", Token, "version"),
			p("status", Token, "status"),
			p("identifier", Token, "identifier"),
			p("date", Date, "date"),
		},
		"Library": {
			p("url", URI, "url"),
			p("name", String, "name"),
			p("title", String, "title"),
			p("version", Token, "version"),
			p("status", Token, "status"),
			p("identifier", Token, "identifier"),
		},
		"ValueSet": {
			p("url", URI, "url"),
			p("name", String, "name"),
			p("title", String, "title"),
			p("version", Token, "version"),
			p("status", Token, "status"),
			p("identifier", Token, "identifier"),
		},
		"Endpoint": {
			p("identifier", Token, "identifier"),
			p("name", String, "name"),
			p("status", Token, "status"),
			p("organization", Reference, "managingOrganization", "Organization"),
		},
		"EpisodeOfCare": {
			p("patient", Reference, "patient", "Patient"),
			p("status", Token, "status"),
			p("type", Token, "type"),
			p("date", Date, "period"),
			p("organization", Reference, "managingOrganization", "Organization"),
			p("identifier", Token, "identifier"),
		},
		"Consent": {
			p("patient", Reference, "patient", "Patient"),
			p("status", Token, "status"),
			p("category", Token, "category"),
			p("date", Date, "dateTime"),
			p("identifier", Token, "identifier"),
		},
		"Specimen": append(subjectPatient("subject"),
			p("type", Token, "type"),
			p("status", Token, "status"),
			p("collected", Date, "collection.collected[x]"),
			p("identifier", Token, "identifier"),
		),
		"List": append(subjectPatient("subject"),
			p("code", Token, "code"),
			p("status", Token, "status"),
			p("date", Date, "date"),
			p("item", Reference, "entry.item"),
			p("identifier", Token, "identifier"),
		),
		"Basic": append(subjectPatient("subject"),
			p("code", Token, "code"),
			p("created", Date, "created"),
			p("author", Reference, "author"),
			p("identifier", Token, "identifier"),
		),
		"FamilyMemberHistory": {
			p("patient", Reference, "patient", "Patient"),
			p("code", Token, "condition.code"),
			p("date", Date, "date"),
			p("status", Token, "status"),
			p("relationship", Token, "relationship"),
		},
		"Flag": append(subjectPatient("subject"),
			p("date", Date, "period"),
			p("author", Reference, "author"),
		),
		"NutritionOrder": {
			p("patient", Reference, "patient", "Patient"),
			p("status", Token, "status"),
			p("datetime", Date, "dateTime"),
		},
		"RiskAssessment": append(subjectPatient("subject"),
			p("date", Date, "occurrence[x]"),
			p("method", Token, "method"),
		),
		"ClinicalImpression": append(subjectPatient("subject"),
			p("date", Date, "date"),
			p("status", Token, "status"),
		),
		"ImagingStudy": append(subjectPatient("subject"),
			p("started", Date, "started"),
			p("status", Token, "status"),
			p("modality", Token, "series.modality"),
		),
		"Appointment": {
			p("actor", Reference, "participant.actor"),
			p("patient", Reference, "participant.actor", "Patient"),
			p("date", Date, "start"),
			p("status", Token, "status"),
		},
		"Media": append(subjectPatient("subject"),
			p("created", Date, "created[x]"),
			p("status", Token, "status"),
		),
		"Person": {
			p("identifier", Token, "identifier"),
			p("name", String, "name"),
			p("patient", Reference, "link.target", "Patient"),
		},
	}
	out := make(map[string]map[string]Def, len(defs))
	for typ, list := range defs {
		m := make(map[string]Def, len(list))
		for _, d := range list {
			d.System = codeSystems[typ][d.Name]
			m[d.Name] = d
		}
		out[typ] = m
	}
	return out
}

// codeSystems are the code systems of the required bindings of token
// parameters on `code` elements.
var codeSystems = func() map[string]map[string]string {
	const (
		fhir = "http://hl7.org/fhir/"
		cs   = "http://hl7.org/fhir/CodeSystem/"
		tho  = "http://terminology.hl7.org/CodeSystem/"
	)
	return map[string]map[string]string{
		"Patient":                  {"gender": fhir + "administrative-gender"},
		"Practitioner":             {"gender": fhir + "administrative-gender"},
		"Observation":              {"status": fhir + "observation-status"},
		"Encounter":                {"status": fhir + "encounter-status"},
		"Procedure":                {"status": fhir + "event-status"},
		"Immunization":             {"status": fhir + "event-status"},
		"Communication":            {"status": fhir + "event-status"},
		"MedicationRequest":        {"status": cs + "medicationrequest-status", "intent": cs + "medicationrequest-intent"},
		"MedicationStatement":      {"status": cs + "medication-statement-status"},
		"MedicationAdministration": {"status": tho + "medication-admin-status"},
		"MedicationDispense":       {"status": tho + "medicationdispense-status"},
		"ServiceRequest":           {"status": fhir + "request-status", "intent": fhir + "request-intent"},
		"DeviceRequest":            {"status": fhir + "request-status", "intent": fhir + "request-intent"},
		"CarePlan":                 {"status": fhir + "request-status", "intent": fhir + "care-plan-intent"},
		"CareTeam":                 {"status": fhir + "care-team-status"},
		"Claim":                    {"status": fhir + "fm-status", "use": fhir + "claim-use"},
		"ExplanationOfBenefit":     {"status": fhir + "explanationofbenefit-status"},
		"Coverage":                 {"status": fhir + "fm-status"},
		"Group":                    {"type": fhir + "group-type"},
		"DiagnosticReport":         {"status": fhir + "diagnostic-report-status"},
		"AllergyIntolerance":       {"category": fhir + "allergy-intolerance-category", "criticality": fhir + "allergy-intolerance-criticality"},
		"Goal":                     {"lifecycle-status": fhir + "goal-status"},
		"Task":                     {"status": fhir + "task-status", "intent": fhir + "task-intent"},
		"DocumentReference":        {"status": fhir + "document-reference-status"},
		"MeasureReport":            {"status": fhir + "measure-report-status"},
		"Measure":                  {"status": fhir + "publication-status"},
		"Library":                  {"status": fhir + "publication-status"},
		"ValueSet":                 {"status": fhir + "publication-status"},
		"Location":                 {"status": fhir + "location-status"},
		"Endpoint":                 {"status": fhir + "endpoint-status"},
		"EpisodeOfCare":            {"status": fhir + "episode-of-care-status"},
		"Consent":                  {"status": fhir + "consent-state-codes"},
		"Specimen":                 {"status": fhir + "specimen-status"},
		"List":                     {"status": fhir + "list-status"},
		"QuestionnaireResponse":    {"status": fhir + "questionnaire-answers-status"},
		"AdverseEvent":             {"actuality": fhir + "adverse-event-actuality"},
		"Appointment":              {"status": fhir + "appointmentstatus"},
		"Device":                   {"status": fhir + "device-status"},
	}
}()
