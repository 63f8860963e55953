package synth

// Code systems used by the generator.
const (
	sysCDCRace      = "urn:oid:2.16.840.1.113883.6.238"
	sysNullFlavor   = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
	sysBCP47        = "urn:ietf:bcp:47"
	sysCPT          = "http://www.ama-assn.org/go/cpt"
	sysHCPCS        = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
	sysSNOMED       = "http://snomed.info/sct"
	sysICD10CM      = "http://hl7.org/fhir/sid/icd-10-cm"
	sysLOINC        = "http://loinc.org"
	sysUCUM         = "http://unitsofmeasure.org"
	sysActCode      = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	sysNPI          = "http://hl7.org/fhir/sid/us-npi"
	sysTIN          = "urn:oid:2.16.840.1.113883.4.4"
	sysPayerType    = "urn:oid:2.16.840.1.113883.3.221.5"
	sysV2IDType     = "http://terminology.hl7.org/CodeSystem/v2-0203"
	sysOrgType      = "http://terminology.hl7.org/CodeSystem/organization-type"
	sysNUCC         = "http://nucc.org/provider-taxonomy"
	sysCondClinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	sysCondVerif    = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	sysCondCategory = "http://terminology.hl7.org/CodeSystem/condition-category"
	sysObsCategory  = "http://terminology.hl7.org/CodeSystem/observation-category"
	sysClaimType    = "http://terminology.hl7.org/CodeSystem/claim-type"
	sysCareTeamRole = "http://terminology.hl7.org/CodeSystem/claimcareteamrole"
	sysAdjudication = "http://terminology.hl7.org/CodeSystem/adjudication"
	sysPOS          = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
	sysCovClass     = "http://terminology.hl7.org/CodeSystem/coverage-class"
	sysSubscriber   = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
	sysDischarge    = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
	sysAdmitSource  = "http://terminology.hl7.org/CodeSystem/admit-source"
	sysPartType     = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sysDiagRole     = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
	sysPractRole    = "http://terminology.hl7.org/CodeSystem/practitioner-role"
	sysInterp       = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

	// Identifier systems of the synthetic enterprise (example.org is reserved
	// for examples, so these can never collide with a real assigner).
	sysMRN     = "http://hospital.equitas.example.org/fhir/sid/mrn"
	sysMember  = "http://payer.equitas.example.org/fhir/sid/member-id"
	sysClaimID = "http://payer.equitas.example.org/fhir/sid/claim-id"
)

// Profiles the measure engine filters on (the ELM retrieves' templateIds).
const (
	profPatient      = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-patient"
	profEncounter    = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-encounter"
	profCondition    = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-condition"
	profObservation  = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-observation"
	profBP           = "http://hl7.org/fhir/StructureDefinition/bp"
	profCoverage     = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-coverage"
	profOrganization = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-organization"
	profPractitioner = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-practitioner"
	profPractRole    = "http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-practitionerrole"
	extRace          = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
	extEthnicity     = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
	extBirthSex      = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
)

type code struct{ system, code, display string }

func (c code) coding() obj {
	return obj{}.add("system", c.system).add("code", c.code).add("display", c.display)
}

func (c code) concept() obj { return obj{{"coding", arr{c.coding()}}} }

// weighted picks among alternatives with integer weights.
type weighted[T any] struct {
	w int
	v T
}

// OMB race categories with their CDC detailed codes. Shares follow the 2020
// US census (one race alone), with unknown and declined answers at the
// rates EHR extracts typically show.
var (
	raceWhite = code{sysCDCRace, "2106-3", "White"}
	raceBlack = code{sysCDCRace, "2054-5", "Black or African American"}
	raceAsian = code{sysCDCRace, "2028-9", "Asian"}
	raceAIAN  = code{sysCDCRace, "1002-5", "American Indian or Alaska Native"}
	raceNHPI  = code{sysCDCRace, "2076-8", "Native Hawaiian or Other Pacific Islander"}
	raceOther = code{sysCDCRace, "2131-1", "Other Race"}
	nullUNK   = code{sysNullFlavor, "UNK", "Unknown"}
	nullASKU  = code{sysNullFlavor, "ASKU", "Asked but no answer"}

	ethHispanic    = code{sysCDCRace, "2135-2", "Hispanic or Latino"}
	ethNonHispanic = code{sysCDCRace, "2186-5", "Not Hispanic or Latino"}
)

// Race strata keys used by the truth tables and DISPARITIES.md.
const (
	RaceWhite    = "2106-3"
	RaceBlack    = "2054-5"
	RaceAsian    = "2028-9"
	RaceAIAN     = "1002-5"
	RaceNHPI     = "2076-8"
	RaceOther    = "2131-1"
	RaceMultiple = "multiple"
	Unknown      = "UNK"
	Declined     = "ASKU"
)

var raceShares = []weighted[string]{
	{580, RaceWhite}, {125, RaceBlack}, {60, RaceAsian}, {12, RaceAIAN}, {3, RaceNHPI},
	{80, RaceOther}, {40, RaceMultiple}, {60, Unknown}, {40, Declined},
}

var raceCodes = map[string]code{
	RaceWhite: raceWhite, RaceBlack: raceBlack, RaceAsian: raceAsian, RaceAIAN: raceAIAN,
	RaceNHPI: raceNHPI, RaceOther: raceOther, Unknown: nullUNK, Declined: nullASKU,
}

// Detailed CDC race codes (Race & Ethnicity code system, urn:oid:2.16.840.1.113883.6.238).
var raceDetail = map[string][]weighted[code]{
	RaceWhite: {{85, code{sysCDCRace, "2108-9", "European"}}, {15, code{sysCDCRace, "2118-8", "Middle Eastern or North African"}}},
	RaceBlack: {{70, code{sysCDCRace, "2058-6", "African American"}}, {20, code{sysCDCRace, "2060-2", "African"}}, {10, code{sysCDCRace, "2071-9", "Haitian"}}},
	RaceAsian: {{24, code{sysCDCRace, "2034-7", "Chinese"}}, {11, code{sysCDCRace, "2047-9", "Vietnamese"}}, {21, code{sysCDCRace, "2029-7", "Asian Indian"}},
		{19, code{sysCDCRace, "2036-2", "Filipino"}}, {9, code{sysCDCRace, "2040-4", "Korean"}}, {7, code{sysCDCRace, "2039-6", "Japanese"}}},
	RaceAIAN: {{30, code{sysCDCRace, "1010-8", "Apache"}}, {35, code{sysCDCRace, "1088-4", "Cherokee"}}, {35, code{sysCDCRace, "1550-3", "Navajo"}}},
	RaceNHPI: {{60, code{sysCDCRace, "2079-2", "Native Hawaiian"}}, {40, code{sysCDCRace, "2080-0", "Samoan"}}},
}

// Ethnicity strata keys.
const (
	EthHispanic    = "2135-2"
	EthNonHispanic = "2186-5"
)

var ethnicityShares = []weighted[string]{{180, EthHispanic}, {740, EthNonHispanic}, {50, Unknown}, {30, Declined}}

var ethnicityDetail = []code{
	{sysCDCRace, "2148-5", "Mexican"}, {sysCDCRace, "2180-8", "Puerto Rican"}, {sysCDCRace, "2182-4", "Cuban"},
	{sysCDCRace, "2184-0", "Dominican"}, {sysCDCRace, "2161-8", "Salvadoran"}, {sysCDCRace, "2165-9", "South American"},
}

// Preferred languages (BCP-47).
var languages = map[string]code{
	"en": {sysBCP47, "en", "English"}, "es": {sysBCP47, "es", "Spanish"}, "zh": {sysBCP47, "zh", "Chinese"},
	"vi": {sysBCP47, "vi", "Vietnamese"}, "tl": {sysBCP47, "tl", "Tagalog"}, "ko": {sysBCP47, "ko", "Korean"},
	"ar": {sysBCP47, "ar", "Arabic"}, "ru": {sysBCP47, "ru", "Russian"}, "ht": {sysBCP47, "ht", "Haitian"},
	"hi": {sysBCP47, "hi", "Hindi"}, "fr": {sysBCP47, "fr", "French"}, "nv": {sysBCP47, "nv", "Navajo"},
}

// Outpatient E&M visits; every code is in a value set of the measures'
// "Qualifying Encounters" (Office Visit, Preventive Care, Annual Wellness,
// Telephone Visits, Virtual Encounter).
var (
	cptNew         = []code{{sysCPT, "99202", "Office/outpatient visit new, straightforward"}, {sysCPT, "99203", "Office/outpatient visit new, low"}, {sysCPT, "99204", "Office/outpatient visit new, moderate"}, {sysCPT, "99205", "Office/outpatient visit new, high"}}
	cptEstablished = []code{{sysCPT, "99212", "Office/outpatient visit est, straightforward"}, {sysCPT, "99213", "Office/outpatient visit est, low"}, {sysCPT, "99214", "Office/outpatient visit est, moderate"}, {sysCPT, "99215", "Office/outpatient visit est, high"}}
	cptEstWeights  = []int{15, 45, 32, 8}
	cptPreventive  = map[int]code{18: {sysCPT, "99395", "Periodic preventive medicine est, 18-39 years"}, 40: {sysCPT, "99396", "Periodic preventive medicine est, 40-64 years"}, 65: {sysCPT, "99397", "Periodic preventive medicine est, 65 years and older"}}
	hcpcsAWV       = code{sysHCPCS, "G0439", "Annual wellness visit, subsequent visit"}
	cptTelephone   = code{sysCPT, "99442", "Telephone evaluation and management service, 11-20 minutes"}
	cptVirtual     = code{sysCPT, "99422", "Online digital evaluation and management service, 11-20 minutes"}
	cptPediatric   = code{sysCPT, "99393", "Periodic preventive medicine est, 5-11 years"}
	cptED          = []code{{sysCPT, "99281", "Emergency department visit, minimal"}, {sysCPT, "99282", "Emergency department visit, straightforward"}, {sysCPT, "99283", "Emergency department visit, low"}, {sysCPT, "99284", "Emergency department visit, moderate"}, {sysCPT, "99285", "Emergency department visit, high"}}
	cptEDWeights   = []int{5, 15, 35, 30, 15}
	cptInpatient   = code{sysCPT, "99223", "Initial hospital inpatient care, high"}
	snoAdmitEmerg  = code{sysSNOMED, "183452005", "Emergency hospital admission (procedure)"}
	snoAdmitElect  = code{sysSNOMED, "8715000", "Hospital admission, elective (procedure)"}
)

// Allowed amounts (USD) per code, roughly the Medicare physician fee
// schedule; payers scale them.
var feeSchedule = map[string]float64{
	"99202": 73, "99203": 112, "99204": 167, "99205": 221, "99212": 57, "99213": 91, "99214": 129, "99215": 181,
	"99395": 122, "99396": 131, "99397": 142, "G0439": 131, "99442": 55, "99422": 62, "99393": 110,
	"99281": 24, "99282": 47, "99283": 79, "99284": 132, "99285": 193, "99223": 205,
}

var (
	classAMB  = code{sysActCode, "AMB", "ambulatory"}
	classVR   = code{sysActCode, "VR", "virtual"}
	classEMER = code{sysActCode, "EMER", "emergency"}
	classIMP  = code{sysActCode, "IMP", "inpatient encounter"}
)

// Conditions: codes from the measures' Essential Hypertension and Diabetes
// value sets, ICD-10-CM with the SNOMED CT equivalent.
var (
	htnCodings = [][]code{
		{{sysICD10CM, "I10", "Essential (primary) hypertension"}, {sysSNOMED, "59621000", "Essential hypertension (disorder)"}},
	}
	dmCodings = [][]code{
		{{sysICD10CM, "E11.9", "Type 2 diabetes mellitus without complications"}, {sysSNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"}},
		{{sysICD10CM, "E11.65", "Type 2 diabetes mellitus with hyperglycemia"}, {sysSNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"}},
		{{sysICD10CM, "E11.22", "Type 2 diabetes mellitus with diabetic chronic kidney disease"}, {sysSNOMED, "44054006", "Diabetes mellitus type 2 (disorder)"}},
		{{sysICD10CM, "E10.9", "Type 1 diabetes mellitus without complications"}, {sysSNOMED, "46635009", "Diabetes mellitus type 1 (disorder)"}},
	}
	dmWeights = []int{60, 25, 8, 7}
	// Reason for routine visits of people without a chronic condition.
	routineDx = code{sysICD10CM, "Z00.00", "Encounter for general adult medical examination without abnormal findings"}
	edDx      = []code{{sysICD10CM, "R07.9", "Chest pain, unspecified"}, {sysICD10CM, "S93.401A", "Sprain of unspecified ligament of right ankle, initial encounter"}, {sysICD10CM, "J06.9", "Acute upper respiratory infection, unspecified"}, {sysICD10CM, "R10.9", "Unspecified abdominal pain"}}
	// Inpatient reasons avoid the Advanced Illness and Frailty value sets
	// (heart failure, COPD): those would exclude patients from the measures.
	ipDx = []code{{sysICD10CM, "J18.9", "Pneumonia, unspecified organism"}, {sysICD10CM, "N39.0", "Urinary tract infection, site not specified"}, {sysICD10CM, "L03.115", "Cellulitis of right lower limb"}, {sysICD10CM, "K35.80", "Unspecified acute appendicitis"}}
)

// Observations.
var (
	loincBPPanel   = code{sysLOINC, "85354-9", "Blood pressure panel with all children optional"}
	loincSystolic  = code{sysLOINC, "8480-6", "Systolic blood pressure"}
	loincDiastolic = code{sysLOINC, "8462-4", "Diastolic blood pressure"}
	// HbA1c Laboratory Test value set members; 4548-4 dominates in practice.
	loincHbA1c        = []code{{sysLOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"}, {sysLOINC, "17856-6", "Hemoglobin A1c/Hemoglobin.total in Blood by HPLC"}, {sysLOINC, "4549-2", "Hemoglobin A1c/Hemoglobin.total in Blood by Electrophoresis"}}
	loincHbA1cWeights = []int{85, 12, 3}
	catVitalSigns     = code{sysObsCategory, "vital-signs", "Vital Signs"}
	catLaboratory     = code{sysObsCategory, "laboratory", "Laboratory"}
)

// Encounter discharge dispositions after an inpatient stay.
var dischargeDispositions = []weighted[code]{
	{74, code{sysDischarge, "home", "Home"}}, {9, code{sysDischarge, "snf", "Skilled nursing facility"}},
	{6, code{sysDischarge, "rehab", "Rehabilitation"}}, {5, code{sysDischarge, "other-hcf", "Other healthcare facility"}},
	{3, code{sysDischarge, "aadvice", "Left against advice"}}, {3, code{sysDischarge, "alt-home", "Alternative home"}},
}
