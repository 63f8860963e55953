package badgerstore

import (
	"sort"
	"strings"

	"github.com/equitas/equitas/store/searchparam"
)

// patientCompartment maps a resource type to the elements that put it in
// a patient's compartment, after the FHIR R4 Patient CompartmentDefinition
// (plus Task.for and Device.patient, which Equitas exports per patient).
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

// indexer derives the index keys of a resource version. It caches the
// registry per type and is read-only after construction.
type indexer struct {
	defs map[string][]searchparam.Def // indexed (term-producing) params per type
}

func newIndexer() *indexer {
	return &indexer{defs: map[string][]searchparam.Def{}}
}

func (ix *indexer) defsFor(typ string) []searchparam.Def {
	// Computed on the fly for unknown types; For is cheap compared with
	// extraction, and the cache below is filled at Open for known types.
	if d, ok := ix.defs[typ]; ok {
		return d
	}
	return indexedDefs(typ)
}

func indexedDefs(typ string) []searchparam.Def {
	var out []searchparam.Def
	for _, d := range searchparam.For(typ) {
		switch {
		case d.Name == "_id":
			// Served by the current-version keys.
		case d.Type == searchparam.Number || d.Type == searchparam.Quantity || d.Type == searchparam.Composite:
			// No index terms: matched against candidates.
		default:
			out = append(out, d)
		}
	}
	return out
}

func (ix *indexer) warm() {
	for _, t := range searchparam.Types() {
		ix.defs[t] = indexedDefs(t)
	}
	for t := range patientCompartment {
		if _, ok := ix.defs[t]; !ok {
			ix.defs[t] = indexedDefs(t)
		}
	}
}

// keys returns the sorted, de-duplicated index and compartment keys of one
// live resource version.
func (ix *indexer) keys(typ, id string, body []byte) []string {
	var out []string
	for _, d := range ix.defsFor(typ) {
		for _, term := range searchparam.Terms(d, searchparam.Extract(d, body)) {
			out = append(out, string(indexKey(typ, d.Name, term, id)))
		}
	}
	for _, pid := range compartmentPatients(typ, id, body) {
		out = append(out, string(compartmentKey(pid, typ, id)))
	}
	sort.Strings(out)
	return dedupSorted(out)
}

// compartmentPatients returns the ids of the patients whose compartment
// holds the resource.
func compartmentPatients(typ, id string, body []byte) []string {
	var out []string
	if typ == "Patient" {
		out = append(out, id)
	}
	paths := patientCompartment[typ]
	if len(paths) == 0 {
		return out
	}
	def := searchparam.Def{Type: searchparam.Reference, Paths: paths, Targets: []string{"Patient"}}
	for _, v := range searchparam.Extract(def, body) {
		if pid, ok := strings.CutPrefix(v.Str, "Patient/"); ok && pid != "" {
			out = append(out, pid)
		}
	}
	return out
}

func dedupSorted(in []string) []string {
	if len(in) < 2 {
		return in
	}
	out := in[:1]
	for _, s := range in[1:] {
		if s != out[len(out)-1] {
			out = append(out, s)
		}
	}
	return out
}
