package export

import (
	"strings"

	"github.com/equitas/equitas/store/searchparam"
)

// compartmentPatients returns the patients whose compartment held a
// resource version: a deleted resource is no longer in the store's
// compartment index, so a Patient or Group export finds the patients of
// its deletions from the last live version. The rules are the store's
// (store/badgerstore/index.go, the FHIR R4 Patient CompartmentDefinition
// plus Task.for and Device.patient); TestCompartmentMatchesTheStore checks
// that the two agree for every type.
func compartmentPatients(typ, id string, body []byte) []string {
	var out []string
	if typ == "Patient" {
		out = append(out, id)
	}
	paths := patientCompartmentPaths[typ]
	if len(paths) == 0 {
		return out
	}
	def := searchparam.Def{Type: searchparam.Reference, Paths: paths, Targets: []string{"Patient"}}
	// Extract walks only the compartment paths; NewDoc would index every
	// top-level element, which costs more for the one or two paths here.
	for _, v := range searchparam.Extract(def, body) {
		if pid, ok := strings.CutPrefix(v.Str, "Patient/"); ok && pid != "" {
			out = append(out, pid)
		}
	}
	return out
}

// patientCompartmentPaths maps a resource type to the elements that put it
// in a patient's compartment.
var patientCompartmentPaths = map[string][]string{
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
