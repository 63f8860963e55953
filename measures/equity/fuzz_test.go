package equity

import (
	"strings"
	"testing"
)

// FuzzPatientAttributes: any input yields attributes or an error, never a
// panic, and the race and ethnicity strata are always set.
func FuzzPatientAttributes(f *testing.F) {
	f.Add([]byte(patientJSON(raceExt(sub("ombCategory", SystemCDCREC, "2054-5")), ethExt(sub("ombCategory", SystemCDCREC, "2186-5")), "")))
	f.Add([]byte(`{"resourceType":"Patient","communication":[{"language":{"coding":[{"code":"-"}]}}],"address":[{"postalCode":"1"}]}`))
	f.Add([]byte(`{"resourceType":"Patient","extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":{"a":1}}]}`))
	f.Add([]byte(`[]`))
	h, err := LoadRaceHierarchy(strings.NewReader(hierarchyCSV))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := PatientAttributes(raw, h)
		if err != nil {
			return
		}
		if a.Race == "" || a.Ethnicity == "" || a.RaceEthnicity == "" || a.Language == "" {
			t.Fatalf("unset stratum: %+v", a)
		}
		if len(a.ZIP) > 5 {
			t.Fatalf("ZIP %q longer than 5", a.ZIP)
		}
	})
}

// FuzzPayerCategory: no panic on arbitrary Coverage JSON.
func FuzzPayerCategory(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Coverage","type":{"coding":[{"system":"urn:oid:2.16.840.1.113883.3.221.5","code":"2"}]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, cat, err := PayerCategory(raw)
		if err == nil && cat == "" {
			t.Fatal("empty category")
		}
	})
}
