package equity

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const hierarchyCSV = `detailed,omb
# CDC REC excerpt
2108-9,2106-3
2118-8,2106-3
2058-6,2054-5
2034-7,2028-9
2148-5,2135-2
`

func patientJSON(race, eth, extra string) string {
	return `{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1960-07-15",
	"extension":[` + race + `,` + eth + `],
	"address":[{"use":"old","postalCode":"99999"},{"use":"home","postalCode":"02139-1234","district":"Middlesex","state":"MA"}],
	"generalPractitioner":[{"reference":"Practitioner/dr1"}]` + extra + `}`
}

func raceExt(subs ...string) string {
	return `{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[` + strings.Join(subs, ",") + `,{"url":"text","valueString":"x"}]}`
}

func ethExt(subs ...string) string {
	return `{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity","extension":[` + strings.Join(subs, ",") + `,{"url":"text","valueString":"x"}]}`
}

func sub(url, system, code string) string {
	return `{"url":"` + url + `","valueCoding":{"system":"` + system + `","code":"` + code + `"}}`
}

func TestPatientAttributes(t *testing.T) {
	h, err := LoadRaceHierarchy(strings.NewReader(hierarchyCSV))
	require.NoError(t, err)
	nonHisp := ethExt(sub("ombCategory", SystemCDCREC, "2186-5"))
	for _, tc := range []struct {
		name      string
		race, eth string
		extra     string
		wantRace  string
		wantEth   string
		wantLang  string
	}{
		{"single OMB", raceExt(sub("ombCategory", SystemCDCREC, "2054-5")), nonHisp, "", "2054-5", "2186-5", Unknown},
		{"detailed only rolls up", raceExt(sub("detailed", SystemCDCREC, "2034-7")), nonHisp, "", "2028-9", "2186-5", Unknown},
		{"detailed within its OMB stays single", raceExt(sub("ombCategory", SystemCDCREC, "2106-3"), sub("detailed", SystemCDCREC, "2118-8")), nonHisp, "", "2106-3", "2186-5", Unknown},
		{"two OMB", raceExt(sub("ombCategory", SystemCDCREC, "2106-3"), sub("ombCategory", SystemCDCREC, "2054-5")), nonHisp, "", TwoOrMore, "2186-5", Unknown},
		{"detailed of another OMB makes two", raceExt(sub("ombCategory", SystemCDCREC, "2106-3"), sub("detailed", "http://terminology.hl7.org/CodeSystem/CDCREC", "2058-6")), nonHisp, "", TwoOrMore, "2186-5", Unknown},
		{"asked-declined", raceExt(sub("ombCategory", SystemNullFlavor, "ASKU")), ethExt(sub("ombCategory", SystemNullFlavor, "ASKU")), "", AskedDeclined, AskedDeclined, Unknown},
		{"UNK", raceExt(sub("ombCategory", SystemNullFlavor, "UNK")), ethExt(sub("ombCategory", SystemNullFlavor, "UNK")), "", Unknown, Unknown, Unknown},
		{"absent extensions", `{"url":"x"}`, `{"url":"y"}`, "", Unknown, Unknown, Unknown},
		{"Hispanic detailed", raceExt(sub("ombCategory", SystemCDCREC, "2131-1")), ethExt(sub("detailed", SystemCDCREC, "2148-5")), "", "2131-1", "2135-2", Unknown},
		{"preferred language subtag", raceExt(sub("ombCategory", SystemCDCREC, "2106-3")), nonHisp,
			`,"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"en"}]}},{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"es-MX"}]},"preferred":true}]`,
			"2106-3", "2186-5", "es"},
		{"single language without preferred", raceExt(sub("ombCategory", SystemCDCREC, "2106-3")), nonHisp,
			`,"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"zh-Hant"}]}}]`, "2106-3", "2186-5", "zh"},
	} {
		a, err := PatientAttributes([]byte(patientJSON(tc.race, tc.eth, tc.extra)), h)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.wantRace, a.Race, tc.name)
		assert.Equal(t, tc.wantEth, a.Ethnicity, tc.name)
		assert.Equal(t, tc.wantLang, a.Language, tc.name)
		assert.Equal(t, "p1", a.PatientID)
		assert.Equal(t, "02139", a.ZIP, "current home address, 5-digit ZIP")
		assert.Equal(t, "Middlesex", a.County)
		assert.Equal(t, "Practitioner/dr1", a.Provider)
	}

	gi := `,"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/individual-genderIdentity","extension":[{"url":"value","valueCodeableConcept":{"coding":[{"code":"446141000124107"}]}}]}]`
	a, err := PatientAttributes([]byte(`{"resourceType":"Patient","id":"q"`+gi+`}`), nil)
	require.NoError(t, err)
	assert.Equal(t, "446141000124107", a.GenderIdentity)
	assert.Equal(t, Unknown, a.Language)

	for _, bad := range []string{`{`, `{"resourceType":"Observation"}`, ``} {
		_, err := PatientAttributes([]byte(bad), nil)
		require.ErrorIs(t, err, ErrNotPatient, bad)
	}
	_, err = LoadRaceHierarchy(strings.NewReader("2108-9,1234-5\n2108-9,9999-9\n"))
	require.Error(t, err)
}

func TestPayerCategory(t *testing.T) {
	ref, cat, err := PayerCategory([]byte(`{"resourceType":"Coverage","beneficiary":{"reference":"Patient/p1"},"type":{"coding":[{"system":"urn:oid:2.16.840.1.113883.3.221.5","code":"121"}]}}`))
	require.NoError(t, err)
	assert.Equal(t, "Patient/p1", ref)
	assert.Equal(t, "1", cat)
	_, cat, err = PayerCategory([]byte(`{"resourceType":"Coverage"}`))
	require.NoError(t, err)
	assert.Equal(t, Unknown, cat)
	_, _, err = PayerCategory([]byte(`{"resourceType":"Patient"}`))
	require.Error(t, err)
}

func TestStratifyDimensions(t *testing.T) {
	svi, err := LoadSVITable("key,rpl_themes\n02139,0.81\nEssex,0.30\n99999,-999\n")
	require.NoError(t, err)
	at := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	attrs := []Attributes{
		{Race: "2106-3", Language: "en", Sex: "female", BirthDate: "1960-07-15", ZIP: "02139", Payer: "1"},
		{Race: "2054-5", Language: "es", Sex: "male", BirthDate: "2000-12-31", County: "Essex", Payer: "2"},
		{Race: "2054-5", Language: "es", Sex: "male", BirthDate: "2008-01-01", ZIP: "99999"},
		{Race: AskedDeclined, Language: "en", Sex: "unknown", BirthDate: "1940"},
	}
	recs := []Record{
		{Attributes: &attrs[0], InitialPopulation: true, Denominator: true, Numerator: true},
		{Attributes: &attrs[1], InitialPopulation: true, Denominator: true},
		{Attributes: &attrs[2], InitialPopulation: true, Denominator: true, Exclusion: true, Numerator: true},
		{Attributes: &attrs[3], InitialPopulation: true, Denominator: true, Numerator: true, NumeratorExclusion: true},
		{Attributes: nil, InitialPopulation: true},
	}
	opts := Options{AgeAt: at, SVI: svi}
	for _, tc := range []struct {
		dims []Dimension
		want map[string]Counts
	}{
		{[]Dimension{DimRace}, map[string]Counts{
			"2106-3": {1, 1, 0, 1}, "2054-5": {2, 1, 1, 0}, AskedDeclined: {1, 1, 0, 0}, Unknown: {1, 0, 0, 0}}},
		{[]Dimension{DimAgeBand}, map[string]Counts{
			"65-74": {1, 1, 0, 1}, "18-44": {1, 1, 0, 0}, "0-17": {1, 0, 1, 0}, "75+": {1, 1, 0, 0}, Unknown: {1, 0, 0, 0}}},
		{[]Dimension{DimSVI}, map[string]Counts{"svi-q4": {1, 1, 0, 1}, "svi-q2": {1, 1, 0, 0}, Unknown: {3, 1, 1, 0}}},
		{[]Dimension{DimPayer}, map[string]Counts{"1": {1, 1, 0, 1}, "2": {1, 1, 0, 0}, Unknown: {3, 1, 1, 0}}},
		{[]Dimension{DimRace, DimLanguage}, map[string]Counts{
			"2106-3\x1fen": {1, 1, 0, 1}, "2054-5\x1fes": {2, 1, 1, 0}, "ASKU\x1fen": {1, 1, 0, 0}, "UNK\x1fUNK": {1, 0, 0, 0}}},
	} {
		s := Stratify(recs, tc.dims, opts)
		assert.Equal(t, Counts{5, 3, 1, 1}, s.Overall)
		got := map[string]Counts{}
		for _, st := range s.Strata {
			got[st.Key()] = st.Counts
			assert.Equal(t, missing(st.Values), st.Missing)
		}
		assert.Equal(t, tc.want, got, "%v", tc.dims)
	}
	for _, d := range Dimensions() {
		p, err := ParseDimension(string(d))
		require.NoError(t, err)
		assert.Equal(t, d, p)
	}
	_, err = ParseDimension("shoe-size")
	require.Error(t, err)
}

func TestSPD15RaceEthnicity(t *testing.T) {
	h, err := LoadRaceHierarchy(strings.NewReader(hierarchyCSV + "2119-6,2118-8\n"))
	require.NoError(t, err)
	nonHisp := ethExt(sub("ombCategory", SystemCDCREC, "2186-5"))
	hisp := ethExt(sub("ombCategory", SystemCDCREC, "2135-2"))
	white := sub("ombCategory", SystemCDCREC, "2106-3")
	for _, tc := range []struct {
		name      string
		race, eth string
		want      string
		wantOMB   string
	}{
		{"White with MENA detail is MENA", raceExt(white, sub("detailed", SystemCDCREC, MENA)), nonHisp, MENA, "2106-3"},
		{"MENA grandchild", raceExt(white, sub("detailed", SystemCDCREC, "2119-6")), nonHisp, MENA, "2106-3"},
		{"White with European and MENA detail", raceExt(white, sub("detailed", SystemCDCREC, MENA), sub("detailed", SystemCDCREC, "2108-9")), nonHisp, MultiracialMultiethnic, "2106-3"},
		{"Hispanic of any race", raceExt(sub("ombCategory", SystemCDCREC, "2054-5")), hisp, "2135-2", "2054-5"},
		{"Hispanic, race declined", raceExt(sub("ombCategory", SystemNullFlavor, "ASKU")), hisp, "2135-2", AskedDeclined},
		{"non-Hispanic two races", raceExt(white, sub("ombCategory", SystemCDCREC, "2028-9")), nonHisp, MultiracialMultiethnic, TwoOrMore},
		{"both declined", raceExt(sub("ombCategory", SystemNullFlavor, "ASKU")), ethExt(sub("ombCategory", SystemNullFlavor, "ASKU")), AskedDeclined, AskedDeclined},
		{"race unknown, not Hispanic", raceExt(sub("ombCategory", SystemNullFlavor, "UNK")), nonHisp, Unknown, Unknown},
	} {
		a, err := PatientAttributes([]byte(patientJSON(tc.race, tc.eth, "")), h)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, a.RaceEthnicity, tc.name)
		assert.Equal(t, tc.wantOMB, a.Race, tc.name)
	}
	_, err = LoadRaceHierarchy(strings.NewReader("1,2\n2,1\n"))
	require.Error(t, err, "a cycle never reaches an OMB category")
	assert.Equal(t, "Middle Eastern or North African", StratumValue(DimRaceEthnicity, MENA, FHIROptions{}).Coding[0].Display)
}
