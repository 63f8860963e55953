package searchparam

import (
	"maps"
	"slices"
	"strings"
)

// patientCompartment maps a resource type to the elements that put it in
// a patient's compartment, after the FHIR R4 Patient CompartmentDefinition
// (plus Task.for and Device.patient, which Equitas exports per patient).
// It is read-only: callers get copies through the functions below.
var patientCompartment = map[string][]string{
	"Account":                     {"subject"},
	"AdverseEvent":                {"subject"},
	"AllergyIntolerance":          {"patient", "recorder", "asserter"},
	"Appointment":                 {"participant.actor"},
	"AppointmentResponse":         {"actor"},
	"AuditEvent":                  {"agent.who"},
	"Basic":                       {"subject", "author"},
	"BodyStructure":               {"patient"},
	"CarePlan":                    {"subject", "activity.detail.performer"},
	"CareTeam":                    {"subject", "participant.member"},
	"ChargeItem":                  {"subject"},
	"Claim":                       {"patient", "payee.party"},
	"ClaimResponse":               {"patient"},
	"ClinicalImpression":          {"subject"},
	"Communication":               {"subject", "sender", "recipient"},
	"CommunicationRequest":        {"subject", "sender", "recipient", "requester"},
	"Composition":                 {"subject", "author", "attester.party"},
	"Condition":                   {"subject", "asserter"},
	"Consent":                     {"patient"},
	"Coverage":                    {"policyHolder", "subscriber", "beneficiary", "payor"},
	"CoverageEligibilityRequest":  {"patient"},
	"CoverageEligibilityResponse": {"patient"},
	"DetectedIssue":               {"patient"},
	"Device":                      {"patient"},
	"DeviceRequest":               {"subject", "performer"},
	"DeviceUseStatement":          {"subject"},
	"DiagnosticReport":            {"subject"},
	"DocumentManifest":            {"subject", "author", "recipient"},
	"DocumentReference":           {"subject", "author"},
	"Encounter":                   {"subject"},
	"EnrollmentRequest":           {"candidate"},
	"EpisodeOfCare":               {"patient"},
	"ExplanationOfBenefit":        {"patient", "payee.party"},
	"FamilyMemberHistory":         {"patient"},
	"Flag":                        {"subject"},
	"Goal":                        {"subject"},
	"Group":                       {"member.entity"},
	"ImagingStudy":                {"subject"},
	"Immunization":                {"patient"},
	"ImmunizationEvaluation":      {"patient"},
	"ImmunizationRecommendation":  {"patient"},
	"Invoice":                     {"subject", "recipient"},
	"List":                        {"subject", "source"},
	"MeasureReport":               {"subject"},
	"Media":                       {"subject"},
	"MedicationAdministration":    {"subject", "performer.actor"},
	"MedicationDispense":          {"subject", "receiver"},
	"MedicationRequest":           {"subject"},
	"MedicationStatement":         {"subject"},
	"MolecularSequence":           {"patient"},
	"NutritionOrder":              {"patient"},
	"Observation":                 {"subject", "performer"},
	"Patient":                     {"link.other"},
	"Person":                      {"link.target"},
	"Procedure":                   {"subject", "performer.actor"},
	"Provenance":                  {"target"},
	"QuestionnaireResponse":       {"subject", "author"},
	"RelatedPerson":               {"patient"},
	"RequestGroup":                {"subject", "action.participant"},
	"ResearchSubject":             {"individual"},
	"RiskAssessment":              {"subject"},
	"Schedule":                    {"actor"},
	"ServiceRequest":              {"subject", "performer"},
	"Specimen":                    {"subject"},
	"SupplyDelivery":              {"patient"},
	"SupplyRequest":               {"requester"},
	"Task":                        {"for"},
	"VisionPrescription":          {"patient"},
}

// PatientCompartmentTypes returns the resource types that can be in a
// patient's compartment (besides Patient itself), sorted.
func PatientCompartmentTypes() []string {
	return slices.Sorted(maps.Keys(patientCompartment))
}

// PatientCompartmentPaths returns the elements of typ that put a resource
// in the compartment of the patient they reference.
func PatientCompartmentPaths(typ string) []string {
	return append([]string(nil), patientCompartment[typ]...)
}

// PatientCompartmentDef returns a reference parameter over typ's
// compartment elements, restricted to Patient targets, for use with
// Extract or Doc.Values; ok is false when typ has no such elements.
func PatientCompartmentDef(typ string) (def Def, ok bool) {
	paths := patientCompartment[typ]
	if len(paths) == 0 {
		return Def{}, false
	}
	return Def{Type: Reference, Paths: paths, Targets: []string{"Patient"}}, true
}

// CompartmentPatients returns the ids of the patients whose compartment
// holds the resource typ/id, given the values of its PatientCompartmentDef
// (hasDef false when there is none). The store's compartment index and the
// export of deletions both use it, so the two cannot disagree.
func CompartmentPatients(typ, id string, hasDef bool, values []Value) []string {
	var out []string
	if typ == "Patient" {
		out = append(out, id)
	}
	if !hasDef {
		return out
	}
	for _, v := range values {
		if pid, ok := strings.CutPrefix(v.Str, "Patient/"); ok && pid != "" {
			out = append(out, pid)
		}
	}
	return out
}
