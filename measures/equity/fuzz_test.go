package equity

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
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

// FuzzCompartmentAttributes: arbitrary Coverage and Observation JSON in a
// compartment never panics, and the strata stay set.
func FuzzCompartmentAttributes(f *testing.F) {
	f.Add([]byte(coverage("c1", "2", "2020-01-01", "", "active")), []byte(observation("76690-7", "2025-06-01", codedValue("http://snomed.info/sct", "20430005"))))
	f.Add([]byte(`{"resourceType":"Coverage","period":{"start":"2"}}`), []byte(`{"code":{"coding":[{"code":"69856-3"}]},"component":[{"valueBoolean":"x"}],"effectiveDateTime":"1"}`))
	f.Add([]byte(`{`), []byte(`[`))
	at := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, cov, obs []byte) {
		p := compartment()
		p.Add("Coverage", json.RawMessage(cov))
		p.Add("Observation", json.RawMessage(obs))
		a, err := CompartmentAttributes(p, nil, at)
		if err != nil {
			t.Fatalf("the Patient is valid: %v", err)
		}
		if a.Payer == "" || a.Race == "" {
			t.Fatalf("unset stratum: %+v", a)
		}
	})
}

// FuzzParseDashboard: a supplied prior report is accepted or rejected with
// ErrPriorReport, never a panic; accepted strata are consistent.
func FuzzParseDashboard(f *testing.F) {
	f.Add([]byte(`{"version":1,"period":{"start":"2024-01-01","end":"2024-12-31"},"measures":[{"id":"M","overall":{"denominator":10,"numerator":5},
	 "stratifiers":[{"code":"race-omb1997","dimensions":["race-omb1997"],"strata":[{"code":"2106-3","codes":["2106-3"],"denominator":40,"numerator":20}]}]}]}`))
	f.Add([]byte(`{"version":1,"period":{"start":"a","end":"b"},"measures":[{"id":"M","stratifiers":[{"dimensions":["x"]}]}]}`))
	f.Add([]byte(`{"version":1,"period":{"start":"a","end":"b"},"measures":[{"id":"M","stratifiers":[{"dimensions":["sex"],"strata":[{"codes":[],"denominator":1,"numerator":2}]}]}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := ParseDashboard(raw)
		if err != nil {
			if !errors.Is(err, ErrPriorReport) {
				t.Fatalf("unwrapped error %v", err)
			}
			return
		}
		for _, m := range d.Measures {
			ps, err := priorStrata(d, m.ID, m.Canonical)
			if err != nil {
				continue
			}
			for _, s := range ps {
				for _, st := range s.Strata {
					if st.Numerator > st.Denominator || len(st.Values) != len(s.Dimensions) {
						t.Fatalf("inconsistent stratum %+v", st)
					}
				}
			}
		}
	})
}

// FuzzLoadSVITable: tables load or fail cleanly; loaded values are ≤ 1.
func FuzzLoadSVITable(f *testing.F) {
	f.Add("key,rpl_themes\nCook County, IL,0.9\n17031010100,0.5\n")
	f.Add("# c\n,\n")
	f.Add("a,NaN\n")
	f.Fuzz(func(t *testing.T, text string) {
		svi, err := LoadSVITable(text)
		if err != nil {
			return
		}
		for k, v := range svi {
			if v > 1 || v != v {
				t.Fatalf("%q → %v", k, v)
			}
			_ = svi.Tier(k)
		}
	})
}

// FuzzParseStratifier: a stratifier parses to distinct known dimensions or
// fails.
func FuzzParseStratifier(f *testing.F) {
	for _, s := range []string{"race", "race+language", "race language", "+", "svi+svi", "age-band+provider+zip"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dims, err := ParseStratifier(s)
		if err != nil {
			return
		}
		seen := map[Dimension]bool{}
		for _, d := range dims {
			if _, err := ParseDimension(string(d)); err != nil || seen[d] {
				t.Fatalf("%q → %v", s, dims)
			}
			seen[d] = true
		}
	})
}
