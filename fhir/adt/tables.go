package adt

// Code systems.
const (
	sysV2Prefix     = "http://terminology.hl7.org/CodeSystem/v2-"
	sysActCode      = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	sysParticipType = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sysNullFlavor   = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
	sysMarital      = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
	sysDataOp       = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
	sysProvAgent    = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
	sysCDCREC       = "urn:oid:2.16.840.1.113883.6.238"
	sysBCP47        = "urn:ietf:bcp:47"
	sysSSN          = "http://hl7.org/fhir/sid/us-ssn"
	sysNPI          = "http://hl7.org/fhir/sid/us-npi"

	extRace       = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
	extEthnicity  = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
	extBirthTime  = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
	extMothersMdn = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"
)

// The tables below are read-only lookup data (v2-to-FHIR IG concept maps
// and CDC Race & Ethnicity codes).

// gender is ConceptMap HL70001 → administrative-gender.
var gender = map[string]string{"F": "female", "M": "male", "O": "other", "U": "unknown", "A": "other", "N": "other"}

// encounterClass is ConceptMap HL70004 → v3-ActCode; codes without a v3
// equivalent keep their v2-0004 code.
var encounterClass = map[string]coding{
	"E": {System: sysActCode, Code: "EMER", Display: "emergency"},
	"I": {System: sysActCode, Code: "IMP", Display: "inpatient encounter"},
	"O": {System: sysActCode, Code: "AMB", Display: "ambulatory"},
	"P": {System: sysActCode, Code: "PRENC", Display: "pre-admission"},
	"R": {System: sysV2Prefix + "0004", Code: "R", Display: "Recurring patient"},
	"B": {System: sysV2Prefix + "0004", Code: "B", Display: "Obstetrics"},
	"C": {System: sysV2Prefix + "0004", Code: "C", Display: "Commercial Account"},
	"N": {System: sysV2Prefix + "0004", Code: "N", Display: "Not Applicable"},
	"U": {System: sysV2Prefix + "0004", Code: "U", Display: "Unknown"},
}

// ombRace are the OMB race categories (US Core ombCategory); other CDC
// race codes go to "detailed".
var ombRace = map[string]string{
	"1002-5": "American Indian or Alaska Native",
	"2028-9": "Asian",
	"2054-5": "Black or African American",
	"2076-8": "Native Hawaiian or Other Pacific Islander",
	"2106-3": "White",
}

// legacyRace maps the pre-2.4 HL7 table 0005 letters to CDC codes.
var legacyRace = map[string]string{
	"W": "2106-3", "B": "2054-5", "A": "2028-9", "I": "1002-5", "P": "2076-8", "O": "2131-1",
}

var ombEthnicity = map[string]string{"2135-2": "Hispanic or Latino", "2186-5": "Not Hispanic or Latino"}

// legacyEthnicity maps HL7 table 0189 letters to CDC codes.
var legacyEthnicity = map[string]string{"H": "2135-2", "N": "2186-5"}

// nullFlavor maps "unknown"/"declined" answers of tables 0005 and 0189.
var nullFlavor = map[string]coding{
	"U":    {System: sysNullFlavor, Code: "UNK", Display: "Unknown"},
	"UNK":  {System: sysNullFlavor, Code: "UNK", Display: "Unknown"},
	"ASKU": {System: sysNullFlavor, Code: "ASKU", Display: "Asked but no answer"},
	"D":    {System: sysNullFlavor, Code: "ASKU", Display: "Asked but no answer"},
}

// iso639 maps common ISO 639-2 three-letter codes to BCP-47.
var iso639 = map[string]string{
	"eng": "en", "spa": "es", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "zho": "zh", "chi": "zh",
	"vie": "vi", "kor": "ko", "rus": "ru", "ara": "ar", "por": "pt", "ita": "it", "jpn": "ja", "hin": "hi",
	"pol": "pl", "hat": "ht", "tgl": "tl", "fas": "fa", "per": "fa", "urd": "ur", "ben": "bn", "som": "so",
	"amh": "am", "nep": "ne", "khm": "km", "lao": "lo", "hmn": "hmn", "guj": "gu", "pan": "pa", "tha": "th",
	"ukr": "uk", "heb": "he", "ell": "el", "gre": "el", "yid": "yi", "asl": "ase", "sgn": "sgn",
}

// maritalStatus is ConceptMap HL70002 → v3-MaritalStatus.
var maritalStatus = map[string]coding{
	"A": {System: sysMarital, Code: "L", Display: "Legally Separated"},
	"E": {System: sysMarital, Code: "L", Display: "Legally Separated"},
	"D": {System: sysMarital, Code: "D", Display: "Divorced"},
	"M": {System: sysMarital, Code: "M", Display: "Married"},
	"S": {System: sysMarital, Code: "S", Display: "Never Married"},
	"W": {System: sysMarital, Code: "W", Display: "Widowed"},
	"C": {System: sysMarital, Code: "C", Display: "Common Law"},
	"G": {System: sysMarital, Code: "T", Display: "Domestic partner"},
	"P": {System: sysMarital, Code: "T", Display: "Domestic partner"},
	"R": {System: sysMarital, Code: "T", Display: "Domestic partner"},
	"N": {System: sysMarital, Code: "A", Display: "Annulled"},
	"I": {System: sysMarital, Code: "I", Display: "Interlocutory"},
	"B": {System: sysMarital, Code: "U", Display: "unmarried"},
	"U": {System: sysNullFlavor, Code: "UNK", Display: "Unknown"},
	"T": {System: sysNullFlavor, Code: "UNK", Display: "Unknown"},
	"O": {System: sysNullFlavor, Code: "OTH", Display: "other"},
}

// nameUse is ConceptMap HL70200 → name-use.
var nameUse = map[string]string{"L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "usual", "C": "old", "BAD": "old", "NB": "old", "S": "anonymous", "T": "temp"}

// addressUse maps XAD.7 (table 0190) to address use; "M" (mailing) is a
// type, not a use.
var addressUse = map[string]string{"H": "home", "P": "home", "B": "work", "O": "work", "C": "temp", "BA": "old", "BDL": "home", "BR": "home", "RH": "home", "V": "temp"}

// telecomUse maps XTN.2 (table 0201).
var telecomUse = map[string]string{"PRN": "home", "ORN": "home", "VHN": "temp", "WPN": "work", "PRS": "mobile"}

// telecomSystem maps XTN.3 (table 0202).
var telecomSystem = map[string]string{"PH": "phone", "CP": "phone", "FX": "fax", "BP": "pager", "Internet": "email", "X.400": "email", "MD": "other", "TDD": "other", "TTY": "other", "SAT": "phone"}

// triggers are the supported events: kind and the Encounter.status the
// trigger implies (ConceptMap HL70003 → encounter-status; "" = keep).
var triggers = map[string]struct{ kind, status string }{
	"A01": {KindAdmit, "in-progress"},
	"A02": {KindTransfer, "in-progress"},
	"A03": {KindDischarge, "finished"},
	"A04": {KindRegister, "planned"},
	"A08": {KindUpdate, ""},
	"A11": {KindCancelAdmit, "cancelled"},
	"A13": {KindCancelDischarge, "in-progress"},
	"A40": {KindMerge, ""},
}
