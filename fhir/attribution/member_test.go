package attribution

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// testDirectory is a two-clinic network: p1 works for clinic1, p2 and p3
// for clinic2.
func testDirectory() *Directory {
	d := NewDirectory()
	d.Add("Organization", []byte(`{"resourceType":"Organization","id":"payer","name":"Acme Health"}`))
	d.Add("Organization", []byte(`{"resourceType":"Organization","id":"clinic1","name":"Clinic One","identifier":[{"system":"`+SystemNPI+`","value":"1111111111"},{"system":"`+SystemTIN+`","value":"111111111"}]}`))
	d.Add("Organization", []byte(`{"resourceType":"Organization","id":"clinic2","name":"Clinic Two","identifier":[{"system":"`+SystemNPI+`","value":"2222222222"},{"system":"`+SystemTIN+`","value":"222222222"}]}`))
	for i, org := range []string{"clinic1", "clinic2", "clinic2"} {
		d.Add("Practitioner", fmt.Appendf(nil, `{"resourceType":"Practitioner","id":"p%d","identifier":[{"system":"%s","value":"100000000%d"}]}`, i+1, SystemNPI, i+1))
		d.Add("PractitionerRole", fmt.Appendf(nil, `{"resourceType":"PractitionerRole","id":"r%d","active":true,"practitioner":{"reference":"Practitioner/p%d"},"organization":{"reference":"Organization/%s"}}`, i+1, i+1, org))
	}
	return d
}

func patient(id, gp string) []byte {
	s := `{"resourceType":"Patient","id":"` + id + `","name":[{"family":"Doe","given":["Jane"]}],"birthDate":"1960-04-02"`
	if gp != "" {
		s += `,"generalPractitioner":[{"reference":"` + gp + `"}]`
	}
	return []byte(s + "}")
}

func coverage(patientID, start, end, ext string) []byte {
	period := `"start":"` + start + `"`
	if end != "" {
		period += `,"end":"` + end + `"`
	}
	s := `{"resourceType":"Coverage","id":"cov-` + patientID + `","status":"active","identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MB"}]},"value":"M-` + patientID + `"}],"beneficiary":{"reference":"Patient/` + patientID + `"},"period":{` + period + `},"payor":[{"reference":"Organization/payer"}]`
	if ext != "" {
		s += `,"extension":[{"url":"` + ExtAttributedProvider + `","valueReference":{"reference":"` + ext + `"}}]`
	}
	return []byte(s + "}")
}

// eob is a one-line professional claim; npi "" leaves the NPI out so the
// provider reference must be resolved.
func eob(id, pract, npi, cpt, date string, allowed float64) []byte {
	prov := `{"reference":"Practitioner/` + pract + `"`
	if npi != "" {
		prov += `,"identifier":{"system":"` + SystemNPI + `","value":"` + npi + `"}`
	}
	prov += "}"
	return fmt.Appendf(nil, `{"resourceType":"ExplanationOfBenefit","id":"%s","status":"active","patient":{"reference":"Patient/x"},"provider":%s,
"careTeam":[{"sequence":1,"provider":%s}],
"item":[{"sequence":1,"careTeamSequence":[1],"productOrService":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"%s"}]},"servicedDate":"%s",
"adjudication":[{"category":{"coding":[{"code":"submitted"}]},"amount":{"value":999}},{"category":{"coding":[{"code":"eligible"}]},"amount":{"value":%g}}]}]}`,
		id, prov, prov, cpt, date, allowed)
}

func TestAttribute(t *testing.T) {
	dir := testDirectory()
	cov := coverage("pt", "2020-01-01", "", "")
	tests := []struct {
		name       string
		method     Method
		mostRecent bool
		patient    []byte
		related    [][]byte
		wantOK     bool
		wantNPI    string
		wantTIN    string
		wantBasis  Method
	}{
		{name: "prospective from generalPractitioner rolls up to the clinic TIN", method: Prospective,
			patient: patient("pt", "Practitioner/p2"), related: [][]byte{cov},
			wantOK: true, wantNPI: "1000000002", wantTIN: "222222222", wantBasis: Prospective},
		{name: "prospective through a PractitionerRole", method: Prospective,
			patient: patient("pt", "PractitionerRole/r1"), related: [][]byte{cov},
			wantOK: true, wantNPI: "1000000001", wantTIN: "111111111", wantBasis: Prospective},
		{name: "prospective to an organization", method: Prospective,
			patient: patient("pt", "Organization/clinic2"), related: [][]byte{cov},
			wantOK: true, wantNPI: "2222222222", wantTIN: "222222222", wantBasis: Prospective},
		{name: "prospective from the Coverage plan assignment", method: Prospective,
			patient: patient("pt", ""), related: [][]byte{coverage("pt", "2020-01-01", "", "Practitioner/p3")},
			wantOK: true, wantNPI: "1000000003", wantTIN: "222222222", wantBasis: Prospective},
		{name: "prospective without a PCP is not attributed", method: Prospective,
			patient: patient("pt", ""), related: [][]byte{cov, eob("e1", "p1", "1000000001", "99213", "2025-05-01", 91)}},
		{name: "no coverage in force on the as-of date", method: Prospective,
			patient: patient("pt", "Practitioner/p1"), related: [][]byte{coverage("pt", "2020-01-01", "2025-06-30", "")}},
		{name: "coverage starting after the as-of date", method: Prospective,
			patient: patient("pt", "Practitioner/p1"), related: [][]byte{coverage("pt", "2026-02-01", "", "")}},
		{name: "retrospective plurality", method: Retrospective,
			patient: patient("pt", "Practitioner/p3"), related: [][]byte{cov,
				eob("e1", "p1", "1000000001", "99213", "2025-02-01", 91), eob("e2", "p1", "1000000001", "99214", "2025-03-01", 129),
				eob("e3", "p2", "1000000002", "99215", "2025-12-01", 181)},
			wantOK: true, wantNPI: "1000000001", wantTIN: "111111111", wantBasis: Retrospective},
		{name: "retrospective ignores ED, inpatient and unlisted codes", method: Retrospective,
			patient: patient("pt", ""), related: [][]byte{cov,
				eob("e1", "p1", "1000000001", "99283", "2025-02-01", 79), eob("e2", "p1", "1000000001", "99223", "2025-03-01", 205),
				eob("e3", "p2", "1000000002", "99212", "2025-12-01", 57)},
			wantOK: true, wantNPI: "1000000002", wantTIN: "222222222", wantBasis: Retrospective},
		{name: "retrospective tie broken by most recent date", method: Retrospective,
			patient: patient("pt", ""), related: [][]byte{cov,
				eob("e1", "p1", "1000000001", "99213", "2025-02-01", 500), eob("e2", "p2", "1000000002", "99213", "2025-04-01", 50)},
			wantOK: true, wantNPI: "1000000002", wantTIN: "222222222", wantBasis: Retrospective},
		{name: "retrospective tie broken by allowed amount", method: Retrospective,
			patient: patient("pt", ""), related: [][]byte{cov,
				eob("e1", "p1", "1000000001", "99213", "2025-04-01", 91), eob("e2", "p3", "1000000003", "99214", "2025-04-01", 129)},
			wantOK: true, wantNPI: "1000000003", wantTIN: "222222222", wantBasis: Retrospective},
		{name: "retrospective resolves a provider given only by reference", method: Retrospective,
			patient: patient("pt", ""), related: [][]byte{cov, eob("e1", "p1", "", "99213", "2025-04-01", 91)},
			wantOK: true, wantNPI: "1000000001", wantTIN: "111111111", wantBasis: Retrospective},
		{name: "retrospective most recent visit", method: Retrospective, mostRecent: true,
			patient: patient("pt", ""), related: [][]byte{cov,
				eob("e1", "p1", "1000000001", "99213", "2025-02-01", 91), eob("e2", "p1", "1000000001", "99213", "2025-03-01", 91),
				eob("e3", "p2", "1000000002", "99212", "2025-11-30", 57)},
			wantOK: true, wantNPI: "1000000002", wantTIN: "222222222", wantBasis: Retrospective},
		{name: "retrospective without services in the window", method: Retrospective,
			patient: patient("pt", "Practitioner/p1"), related: [][]byte{cov, eob("e1", "p1", "1000000001", "99213", "2024-11-01", 91)}},
		{name: "hybrid uses the selected PCP", method: Hybrid,
			patient: patient("pt", "Practitioner/p3"), related: [][]byte{cov,
				eob("e1", "p1", "1000000001", "99213", "2025-02-01", 91), eob("e2", "p1", "1000000001", "99213", "2025-03-01", 91)},
			wantOK: true, wantNPI: "1000000003", wantTIN: "222222222", wantBasis: Prospective},
		{name: "hybrid falls back to claims", method: Hybrid,
			patient: patient("pt", ""), related: [][]byte{cov,
				eob("e1", "p1", "1000000001", "99213", "2025-02-01", 91), eob("e2", "p1", "1000000001", "99213", "2025-03-01", 91)},
			wantOK: true, wantNPI: "1000000001", wantTIN: "111111111", wantBasis: Retrospective},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAttributor(dir, Options{Method: tc.method, AsOf: day("2026-01-01"), MostRecent: tc.mostRecent})
			m, ok := a.Attribute(tc.patient, tc.related)
			assert.Equal(t, tc.wantOK, ok)
			if !tc.wantOK {
				return
			}
			assert.Equal(t, tc.wantNPI, m.Provider.NPI)
			assert.Equal(t, tc.wantTIN, m.Provider.TIN)
			assert.Equal(t, tc.wantBasis, m.Basis)
			assert.Equal(t, "pt", m.PatientID)
			assert.Equal(t, "Jane Doe", m.Name)
			assert.Equal(t, "1960-04-02", m.BirthDate)
			assert.Equal(t, "M-pt", m.MemberID)
			assert.Equal(t, "payer", m.PayerID)
			assert.True(t, strings.HasPrefix(m.Provider.Reference(), "Practitioner/") || strings.HasPrefix(m.Provider.Reference(), "Organization/"))
		})
	}
}

func TestAttributeCustomCodeSet(t *testing.T) {
	a := NewAttributor(testDirectory(), Options{Method: Retrospective, AsOf: day("2026-01-01"), EMCodes: map[string]bool{"99283": true}})
	m, ok := a.Attribute(patient("pt", ""), [][]byte{coverage("pt", "2020-01-01", "", ""),
		eob("e1", "p1", "1000000001", "99213", "2025-02-01", 91), eob("e2", "p2", "1000000002", "99283", "2025-03-01", 79)})
	assert.True(t, ok)
	assert.Equal(t, "1000000002", m.Provider.NPI)
}
