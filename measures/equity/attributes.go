package equity

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tidwall/gjson"
)

// Code systems and extensions read from patient data.
const (
	SystemCDCREC     = "urn:oid:2.16.840.1.113883.6.238"
	systemCDCRECTHO  = "http://terminology.hl7.org/CodeSystem/CDCREC"
	systemV3Race     = "http://terminology.hl7.org/CodeSystem/v3-Race"
	SystemNullFlavor = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
	SystemBCP47      = "urn:ietf:bcp:47"
	SystemPayerType  = "urn:oid:2.16.840.1.113883.3.221.5"

	extRace           = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
	extEthnicity      = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
	extGenderIdentity = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-genderIdentity"
	extIndividualGI   = "http://hl7.org/fhir/StructureDefinition/individual-genderIdentity"
	extBirthSex       = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
)

const (
	extInterpreter    = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-interpreter-needed"
	loincSexualOrient = "76690-7"
)

// Stratum codes that are not CDC REC or BCP-47 codes.
const (
	Unknown       = "UNK"  // v3-NullFlavor: no value recorded
	AskedDeclined = "ASKU" // v3-NullFlavor: asked, no answer / declined
	TwoOrMore     = "two-or-more"
)

// OMB 1997 race and ethnicity categories (CDC REC codes).
// ombRace and ombEthnicity are read-only lookup tables of the OMB 1997
// minimum categories.
var ombRace = map[string]bool{"1002-5": true, "2028-9": true, "2054-5": true, "2076-8": true, "2106-3": true, "2131-1": true}
var ombEthnicity = map[string]bool{"2135-2": true, "2186-5": true}

// MENA is the CDC REC code of Middle Eastern or North African, a child of
// White in CDC REC and a minimum category of its own under SPD 15 (2024).
const MENA = "2118-8"

// MultiracialMultiethnic is the SPD 15 combined stratum for more than one
// non-Hispanic race category.
const MultiracialMultiethnic = "multiracial-multiethnic"

// RaceHierarchy maps CDC REC race and ethnicity codes to their parent code
// (the CDC REC hierarchy); following parents ends at an OMB category. It is
// data, loaded with LoadRaceHierarchy, not compiled in.
type RaceHierarchy map[string]string

// maxDepth bounds parent chains (CDC REC is five levels deep).
const maxDepth = 8

// rollUp follows code's parents to its OMB category; mena reports whether
// the chain passes through MENA.
func (h RaceHierarchy) rollUp(code string) (omb string, mena bool) {
	for range maxDepth {
		if code == MENA {
			mena = true
		}
		if ombRace[code] || ombEthnicity[code] {
			return code, mena
		}
		parent, ok := h[code]
		if !ok {
			return "", false
		}
		code = parent
	}
	return "", false
}

// LoadRaceHierarchy reads "code,parent" lines (a header line, blank lines
// and lines starting with # are skipped); the parent may be an OMB
// category or another detailed code. Every chain must reach an OMB
// category.
func LoadRaceHierarchy(r io.Reader) (RaceHierarchy, error) {
	h := RaceHierarchy{}
	sc := bufio.NewScanner(r)
	first := true
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		code, parent, ok := strings.Cut(t, ",")
		code, parent = strings.TrimSpace(code), strings.TrimSpace(parent)
		if !ok || code == "" || parent == "" {
			return nil, fmt.Errorf("equity: race hierarchy line %d: want code,parent", line)
		}
		if first && !strings.ContainsAny(code, "0123456789") {
			first = false
			continue // header
		}
		first = false
		h[code] = parent
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("equity: race hierarchy: %w", err)
	}
	for code := range h {
		if omb, _ := h.rollUp(code); omb == "" {
			return nil, fmt.Errorf("equity: race hierarchy: %s does not roll up to an OMB category", code)
		}
	}
	return h, nil
}

// Attributes are the equity-relevant facts of one patient. Empty strings
// mean not recorded and stratify as Unknown.
type Attributes struct {
	PatientID string
	// Race: OMB code, TwoOrMore, AskedDeclined or Unknown.
	Race string
	// Ethnicity: 2135-2, 2186-5, AskedDeclined or Unknown.
	Ethnicity string
	// RaceEthnicity is the SPD 15 combined category: Hispanic or Latino
	// (any race), else the race with MENA as its own category,
	// MultiracialMultiethnic, AskedDeclined or Unknown.
	RaceEthnicity string
	// Language: BCP-47 primary subtag of the preferred language.
	Language string
	// InterpreterNeeded: the US Core interpreter-needed code (SNOMED
	// 373066001 yes, 373067005 no).
	InterpreterNeeded string
	// Sex: Patient.gender (administrative gender).
	Sex string
	// BirthSex: US Core birth sex (M, F, UNK).
	BirthSex       string
	GenderIdentity string
	BirthDate      string
	ZIP, County    string
	State          string
	// Set by the caller from other sources (Coverage, Observations,
	// enrollment, attribution lists, geocoding).
	Payer             string
	Disability        string
	SexualOrientation string
	Provider          string
	// Tract is a census tract FIPS code, when geocoded.
	Tract string
}

// ErrNotPatient is returned for JSON that is not a Patient resource.
var ErrNotPatient = errors.New("equity: not a Patient resource")

// PatientAttributes extracts Attributes from a FHIR R4 Patient (JSON).
// Detailed race and ethnicity codes are rolled up through h (which may be
// nil when only ombCategory is to be used). The attributed provider
// defaults to the first generalPractitioner.
func PatientAttributes(raw []byte, h RaceHierarchy) (Attributes, error) {
	if !gjson.ValidBytes(raw) {
		return Attributes{}, fmt.Errorf("%w: invalid JSON", ErrNotPatient)
	}
	root := gjson.ParseBytes(raw)
	if root.Get("resourceType").String() != "Patient" {
		return Attributes{}, ErrNotPatient
	}
	a := Attributes{
		PatientID: root.Get("id").String(),
		Sex:       root.Get("gender").String(),
		BirthDate: root.Get("birthDate").String(),
		Provider:  root.Get("generalPractitioner.0.reference").String(),
	}
	spd15 := ""
	root.Get("extension").ForEach(func(_, ext gjson.Result) bool {
		switch ext.Get("url").String() {
		case extRace:
			a.Race, spd15 = raceCategory(ext, h)
		case extEthnicity:
			a.Ethnicity = ethnicityCategory(ext, h)
		case extBirthSex:
			a.BirthSex = ext.Get("valueCode").String()
		case extInterpreter:
			a.InterpreterNeeded = ext.Get("valueCoding.code").String()
		case extGenderIdentity, extIndividualGI:
			v := ext.Get("valueCodeableConcept.coding.0.code")
			if !v.Exists() {
				v = ext.Get(`extension.#(url=="value").valueCodeableConcept.coding.0.code`)
			}
			a.GenderIdentity = v.String()
		}
		return true
	})
	if a.Race == "" {
		a.Race = Unknown
	}
	if a.Ethnicity == "" {
		a.Ethnicity = Unknown
	}
	switch {
	case a.Ethnicity == "2135-2":
		a.RaceEthnicity = a.Ethnicity
	case spd15 != "":
		a.RaceEthnicity = spd15
	case a.Ethnicity == AskedDeclined:
		a.RaceEthnicity = AskedDeclined
	default:
		a.RaceEthnicity = Unknown
	}
	a.Language = preferredLanguage(root.Get("communication"))
	addr := homeAddress(root.Get("address"))
	if addr.Exists() {
		zip := addr.Get("postalCode").String()
		if len(zip) > 5 {
			zip = zip[:5]
		}
		a.ZIP, a.County, a.State = zip, addr.Get("district").String(), addr.Get("state").String()
	}
	return a, nil
}

// raceCategory applies the §5.1 roll-up: ASKU → asked-declined; UNK or
// nothing → unknown; one OMB category → it; several → two or more. It also
// returns the SPD 15 race (MENA its own category; White dropped when only
// MENA detail explains it), or "" when no race is known.
func raceCategory(ext gjson.Result, h RaceHierarchy) (omb1997, spd15 string) {
	cats := map[string]bool{}
	var mena, otherWhite bool
	null := ""
	ext.Get("extension").ForEach(func(_, sub gjson.Result) bool {
		url := sub.Get("url").String()
		if url != "ombCategory" && url != "detailed" {
			return true
		}
		c := sub.Get("valueCoding")
		code, sys := c.Get("code").String(), c.Get("system").String()
		switch {
		case sys == SystemNullFlavor && (code == AskedDeclined || code == Unknown):
			if null != AskedDeclined {
				null = code
			}
		case !isRaceSystem(sys):
		case url == "ombCategory" && ombRace[code]:
			cats[code] = true
		case url == "detailed":
			omb, viaMENA := h.rollUp(code)
			if code == MENA {
				omb, viaMENA = "2106-3", true
			}
			if !ombRace[omb] {
				break
			}
			cats[omb] = true
			if viaMENA {
				mena = true
			} else if omb == "2106-3" {
				otherWhite = true
			}
		}
		return true
	})
	switch {
	case null == AskedDeclined && len(cats) == 0:
		return AskedDeclined, ""
	case len(cats) == 0:
		return Unknown, ""
	}
	spd := map[string]bool{}
	for c := range cats {
		spd[c] = true
	}
	if mena {
		spd[MENA] = true
		if !otherWhite {
			delete(spd, "2106-3")
		}
	}
	one := func(set map[string]bool, many string) string {
		if len(set) > 1 {
			return many
		}
		for c := range set {
			return c
		}
		return Unknown
	}
	return one(cats, TwoOrMore), one(spd, MultiracialMultiethnic)
}

func ethnicityCategory(ext gjson.Result, h RaceHierarchy) string {
	out := ""
	ext.Get("extension").ForEach(func(_, sub gjson.Result) bool {
		url := sub.Get("url").String()
		c := sub.Get("valueCoding")
		code, sys := c.Get("code").String(), c.Get("system").String()
		switch {
		case url != "ombCategory" && url != "detailed":
		case sys == SystemNullFlavor && (code == AskedDeclined || code == Unknown):
			if out == "" {
				out = code
			}
		case !isRaceSystem(sys):
		case url == "ombCategory" && ombEthnicity[code]:
			out = code
		case url == "detailed" && (out == "" || out == Unknown || out == AskedDeclined):
			if omb, _ := h.rollUp(code); ombEthnicity[omb] {
				out = omb
			}
		}
		return true
	})
	if out == "" {
		return Unknown
	}
	return out
}

func isRaceSystem(sys string) bool {
	return sys == SystemCDCREC || sys == systemCDCRECTHO || sys == systemV3Race
}

// preferredLanguage is the preferred entry, else the only entry, else
// Unknown, reduced to its primary subtag (§5.3).
func preferredLanguage(comm gjson.Result) string {
	items := comm.Array()
	pick := gjson.Result{}
	for _, c := range items {
		if c.Get("preferred").Bool() {
			pick = c
			break
		}
	}
	if !pick.Exists() && len(items) == 1 {
		pick = items[0]
	}
	if !pick.Exists() {
		return Unknown
	}
	code := ""
	pick.Get("language.coding").ForEach(func(_, c gjson.Result) bool {
		if s := c.Get("system").String(); s == SystemBCP47 || s == "" {
			code = c.Get("code").String()
			return false
		}
		return true
	})
	if code == "" {
		return Unknown
	}
	primary, _, _ := strings.Cut(code, "-")
	if primary == "" {
		return Unknown
	}
	return strings.ToLower(primary)
}

// homeAddress is the current home address, else the first one.
func homeAddress(addrs gjson.Result) gjson.Result {
	var first gjson.Result
	found := gjson.Result{}
	addrs.ForEach(func(_, a gjson.Result) bool {
		if !first.Exists() {
			first = a
		}
		if a.Get("use").String() == "home" && !a.Get("period.end").Exists() {
			found = a
			return false
		}
		return true
	})
	if found.Exists() {
		return found
	}
	return first
}

// PayerCategory reads a Coverage (JSON) and returns the beneficiary
// reference and the payer category: the first digit of the Source of
// Payment Typology code (1 Medicare, 2 Medicaid, 3 other government,
// 5 private, 6 BCBS, 8 no payment, 9 miscellaneous), Unknown if absent.
func PayerCategory(raw []byte) (patientRef, category string, err error) {
	if !gjson.ValidBytes(raw) {
		return "", "", errors.New("equity: coverage: invalid JSON")
	}
	root := gjson.ParseBytes(raw)
	if root.Get("resourceType").String() != "Coverage" {
		return "", "", errors.New("equity: not a Coverage resource")
	}
	category = Unknown
	root.Get("type.coding").ForEach(func(_, c gjson.Result) bool {
		if c.Get("system").String() == SystemPayerType && c.Get("code").String() != "" {
			category = c.Get("code").String()[:1]
			return false
		}
		return true
	})
	return root.Get("beneficiary.reference").String(), category, nil
}

// SexualOrientation reads a US Core sexual orientation Observation (LOINC
// 76690-7, JSON) and returns the subject reference and the stratum code:
// the SNOMED answer, AskedDeclined for a declined or ASKU answer, Unknown
// otherwise. ok is false for any other Observation.
func SexualOrientation(raw []byte) (patientRef, code string, ok bool, err error) {
	if !gjson.ValidBytes(raw) {
		return "", "", false, errors.New("equity: observation: invalid JSON")
	}
	root := gjson.ParseBytes(raw)
	if root.Get("resourceType").String() != "Observation" {
		return "", "", false, errors.New("equity: not an Observation resource")
	}
	if !root.Get(`code.coding.#(code=="` + loincSexualOrient + `")`).Exists() {
		return "", "", false, nil
	}
	if st := root.Get("status").String(); st == "entered-in-error" || st == "cancelled" {
		return "", "", false, nil
	}
	code = Unknown
	v := root.Get("valueCodeableConcept.coding.0")
	dar := root.Get("dataAbsentReason.coding.0.code").String()
	switch {
	case dar == "asked-declined" || v.Get("code").String() == AskedDeclined:
		code = AskedDeclined
	case v.Get("system").String() == SystemNullFlavor:
	case v.Get("code").String() != "":
		code = v.Get("code").String()
	}
	return root.Get("subject.reference").String(), code, true, nil
}
