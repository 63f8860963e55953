package equity

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/patientsource"
)

func compartment(resources ...string) *patientsource.Patient {
	p := &patientsource.Patient{ID: "p1"}
	p.Add("Patient", json.RawMessage(patientJSON(raceExt(sub("ombCategory", SystemCDCREC, "2054-5")), ethExt(sub("ombCategory", SystemCDCREC, "2186-5")),
		`,"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"es-MX"}]},"preferred":true}]`)))
	for _, r := range resources {
		var head struct{ ResourceType string }
		if err := json.Unmarshal([]byte(r), &head); err != nil {
			panic(err)
		}
		p.Add(head.ResourceType, json.RawMessage(r))
	}
	return p
}

func coverage(id, code, start, end, status string) string {
	period := `"start":"` + start + `"`
	if end != "" {
		period += `,"end":"` + end + `"`
	}
	return `{"resourceType":"Coverage","id":"` + id + `","status":"` + status + `","beneficiary":{"reference":"Patient/p1"},
	"type":{"coding":[{"system":"urn:oid:2.16.840.1.113883.3.221.5","code":"` + code + `"}]},"period":{` + period + `}}`
}

func observation(code, date, value string) string {
	return `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"` + code + `"}]},
	"subject":{"reference":"Patient/p1"},"effectiveDateTime":"` + date + `",` + value + `}`
}

func codedValue(system, code string) string {
	return `"valueCodeableConcept":{"coding":[{"system":"` + system + `","code":"` + code + `"}]}`
}

func TestCompartmentAttributes(t *testing.T) {
	at := time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)
	for _, tc := range []struct {
		name                    string
		resources               []string
		payer, so, gi, disabled string
	}{
		{"nothing recorded", nil, Unknown, "", "", ""},
		{"coverage in force wins over a later one", []string{
			coverage("c1", "2", "2020-01-01", "", "active"), coverage("c2", "512", "2026-02-01", "", "active")}, "2", "", "", ""},
		{"ended and cancelled coverage are skipped", []string{
			coverage("c1", "1", "2019-01-01", "2024-12-31", "active"), coverage("c2", "2", "2020-01-01", "", "cancelled"),
			coverage("c3", "512", "2021-01-01", "", "active")}, "5", "", "", ""},
		{"only an expired coverage: the latest", []string{coverage("c1", "1", "2019-01-01", "2020-12-31", "active")}, "1", "", "", ""},
		{"SOGI and disability, latest before the period end", []string{
			observation("76690-7", "2024-01-01", codedValue("http://snomed.info/sct", "38628009")),
			observation("76690-7", "2025-06-01", codedValue("http://snomed.info/sct", "20430005")),
			observation("76690-7", "2026-03-01", codedValue("http://snomed.info/sct", "42035005")),
			observation("76691-5", "2025-01-01", codedValue("http://snomed.info/sct", "446141000124107")),
			observation("69856-3", "2025-02-01", `"component":[{"code":{"text":"walking"},`+codedValue("http://loinc.org", "LA32-8")+`},{"code":{"text":"seeing"},`+codedValue("http://loinc.org", "LA33-6")+`}]`),
		}, Unknown, "20430005", "446141000124107", "disabled"},
		{"declined answers", []string{
			observation("76690-7", "2025-06-01", `"dataAbsentReason":{"coding":[{"code":"asked-declined"}]}`),
			observation("89571-4", "2025-06-01", `"dataAbsentReason":{"coding":[{"code":"asked-declined"}]}`),
		}, Unknown, AskedDeclined, "", AskedDeclined},
		{"no disability", []string{observation("69857-1", "2025-06-01", `"valueBoolean":false`)}, Unknown, "", "", "not-disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := CompartmentAttributes(compartment(tc.resources...), nil, at)
			require.NoError(t, err)
			assert.Equal(t, "2054-5", a.Race)
			assert.Equal(t, "es", a.Language)
			assert.Equal(t, tc.payer, a.Payer)
			assert.Equal(t, tc.so, a.SexualOrientation)
			assert.Equal(t, tc.gi, a.GenderIdentity)
			assert.Equal(t, tc.disabled, a.Disability)
		})
	}
	_, err := CompartmentAttributes(&patientsource.Patient{ID: "x"}, nil, at)
	assert.ErrorIs(t, err, ErrNotPatient)
}

func TestResolveDirection(t *testing.T) {
	cms165 := &measure.Definition{Name: "ControllingHighBloodPressureFHIR", URL: "https://madie.cms.gov/Measure/ControllingHighBloodPressureFHIR"}
	for _, tc := range []struct {
		name        string
		def         *measure.Definition
		group       string
		corrections []DirectionCorrection
		want        Direction
		noted       bool
	}{
		{"CMS165's defect is corrected", cms165, "decrease", KnownDirectionCorrections(), Increase, true},
		{"a correct CMS165 needs no note", cms165, "increase", KnownDirectionCorrections(), Increase, false},
		{"corrections can be switched off", cms165, "decrease", []DirectionCorrection{}, Decrease, false},
		{"other measures keep their code", &measure.Definition{Name: "X", ImprovementNotation: "decrease"}, "", KnownDirectionCorrections(), Decrease, false},
		{"default is increase", &measure.Definition{Name: "X"}, "", nil, Increase, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, note := ResolveDirection(tc.def, &measure.Group{ImprovementNotation: tc.group}, tc.corrections)
			assert.Equal(t, tc.want, dir)
			assert.Equal(t, tc.noted, note != "", note)
		})
	}
}

func TestParseStratifierAndPeriodEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Dimension
		ok   bool
	}{
		{"race", []Dimension{DimRace}, true},
		{"race+language", []Dimension{DimRace, DimLanguage}, true},
		{"race language", []Dimension{DimRace, DimLanguage}, true},
		{"age-band+svi+provider", []Dimension{DimAgeBand, DimSVI, DimProvider}, true},
		{"ethnicity-omb1997", []Dimension{DimEthnicity}, true},
		{"race+race", nil, false},
		{"shoe-size", nil, false},
		{"+", nil, false},
	} {
		got, err := ParseStratifier(tc.in)
		if !tc.ok {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	for in, want := range map[string]time.Time{
		"2025":                      time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.UTC),
		"2025-02":                   time.Date(2025, 2, 28, 23, 59, 59, 999999999, time.UTC),
		"2025-12-31":                time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.UTC),
		"2025-06-30T12:00:00+00:00": time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC),
	} {
		got, err := PeriodEndTime(in)
		require.NoError(t, err, in)
		assert.True(t, want.Equal(got), "%s: %s", in, got)
	}
	for _, in := range []string{"", "2025-13-01", "yesterday", "2025-06-30T12:00:00"} {
		_, err := PeriodEndTime(in)
		assert.Error(t, err, in)
	}
}

func TestSVISampleTable(t *testing.T) {
	b, err := os.ReadFile("testdata/svi-sample.csv")
	require.NoError(t, err)
	svi, err := LoadSVITable(string(b))
	require.NoError(t, err)
	assert.Len(t, svi, 32)
	a := Attributes{County: "Wayne County", State: "MI", ZIP: "48201"}
	assert.Equal(t, "svi-q4", svi.Tier(a.GeoKeys()...))
	a = Attributes{County: "King County", State: "WA"}
	assert.Equal(t, "svi-q1", svi.Tier(a.GeoKeys()...))
	assert.Equal(t, Unknown, svi.Tier((&Attributes{County: "Nowhere"}).GeoKeys()...))
	_, err = LoadSVITable("key,rpl_themes\nCook County, IL,high\n")
	assert.Error(t, err)
}
