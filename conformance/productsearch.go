package conformance

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkProductSearch exercises the search parameters Equitas promises for
// each resource type (productSearchParams) on two resources per type, one
// per patient, with answers worked out by hand.
func checkProductSearch(t *testing.T, c *client, run runID) {
	pop := newPopulation(run)
	fam := run.family("Prod")
	sys := run.system("prod")
	q := url.QueryEscape
	coding := func(system, code string) map[string]any {
		return map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}
	}
	const (
		snomed  = "http://snomed.info/sct"
		rxnorm  = "http://www.nlm.nih.gov/research/umls/rxnorm"
		cvx     = "http://hl7.org/fhir/sid/cvx"
		condCat = "http://terminology.hl7.org/CodeSystem/condition-category"
		medCat  = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
	)
	pop.add("q1", c.create(t, patient(fam+"one")).Get("id").String())
	pop.add("q2", c.create(t, patient(fam+"two")).Get("id").String())
	id := func(label string) string { return pop.ids[label] }

	// add builds a minimal resource for the patient and applies changes.
	add := func(label, typ, subject string, changes map[string]any) {
		body := minimalResource(typ, id(subject))
		for k, v := range changes {
			body[k] = v
		}
		pop.add(label, c.create(t, body).Get("id").String())
	}
	add("c1", "Condition", "q1", map[string]any{"code": coding(snomed, "44054006"), "category": []any{coding(condCat, "problem-list-item")}})
	add("c2", "Condition", "q2", map[string]any{"code": coding(snomed, "38341003"), "category": []any{coding(condCat, "encounter-diagnosis")}})
	add("pr1", "Procedure", "q1", map[string]any{"code": coding(snomed, "80146002"), "status": "completed", "performedDateTime": "2021-03-05", "category": coding(snomed, "387713003")})
	add("pr2", "Procedure", "q2", map[string]any{"code": coding(snomed, "73761001"), "status": "in-progress", "performedPeriod": map[string]any{"start": "2021-04-01", "end": "2021-04-03"}})
	add("mr1", "MedicationRequest", "q1", map[string]any{"medicationCodeableConcept": coding(rxnorm, "197361"), "status": "active", "category": []any{coding(medCat, "outpatient")}})
	add("mr2", "MedicationRequest", "q2", map[string]any{"medicationCodeableConcept": coding(rxnorm, "310965"), "status": "stopped"})
	add("im1", "Immunization", "q1", map[string]any{"vaccineCode": coding(cvx, "207"), "occurrenceDateTime": "2021-01-15", "status": "completed"})
	add("im2", "Immunization", "q2", map[string]any{"vaccineCode": coding(cvx, "140"), "occurrenceDateTime": "2020-10-01", "status": "not-done"})
	add("sr1", "ServiceRequest", "q1", map[string]any{"code": coding(snomed, "73761001"), "status": "active", "category": []any{coding(snomed, "108252007")}})
	add("sr2", "ServiceRequest", "q2", map[string]any{"code": coding(snomed, "80146002"), "status": "completed"})
	add("cl1", "Claim", "q1", map[string]any{"created": "2021-02-01", "status": "active"})
	add("cl2", "Claim", "q2", map[string]any{"created": "2021-07-15", "status": "cancelled"})
	add("eob1", "ExplanationOfBenefit", "q1", map[string]any{"created": "2021-02-10", "status": "active"})
	add("eob2", "ExplanationOfBenefit", "q2", map[string]any{"created": "2021-08-01", "status": "entered-in-error"})
	add("cov1", "Coverage", "q1", map[string]any{"status": "active"})
	add("cov2", "Coverage", "q2", map[string]any{"status": "cancelled"})
	add("g1", "Group", "q1", map[string]any{
		"identifier":     []any{map[string]any{"system": sys, "value": "G1"}},
		"characteristic": []any{map[string]any{"code": coding(sys, "attributed"), "valueBoolean": true, "exclude": false}},
		"member":         []any{map[string]any{"entity": map[string]any{"reference": "Patient/" + id("q1")}}, map[string]any{"entity": map[string]any{"reference": "Patient/" + id("q2")}}},
	})
	add("g2", "Group", "q1", map[string]any{
		"identifier":     []any{map[string]any{"system": sys, "value": "G2"}},
		"characteristic": []any{map[string]any{"code": coding(sys, "enrolled"), "valueBoolean": true, "exclude": false}},
		"member":         []any{map[string]any{"entity": map[string]any{"reference": "Patient/" + id("q2")}}},
	})
	add("pra1", "Practitioner", "q1", map[string]any{"name": []any{map[string]any{"family": fam + "Welby", "given": []any{"Marcus"}}}, "identifier": []any{map[string]any{"system": sys, "value": "P1"}}})
	add("pra2", "Practitioner", "q1", map[string]any{"name": []any{map[string]any{"family": fam + "Casey", "given": []any{"Ben"}}}, "identifier": []any{map[string]any{"system": sys, "value": "P2"}}})
	add("org1", "Organization", "q1", map[string]any{"name": fam + " Clinic", "identifier": []any{map[string]any{"system": sys, "value": "O1"}}})
	add("org2", "Organization", "q1", map[string]any{"name": fam + " Hospital", "identifier": []any{map[string]any{"system": sys, "value": "O2"}}})
	add("role1", "PractitionerRole", "q1", map[string]any{"identifier": []any{map[string]any{"system": sys, "value": "R1"}}, "practitioner": map[string]any{"reference": "Practitioner/" + id("pra1")}})
	add("role2", "PractitionerRole", "q1", map[string]any{"identifier": []any{map[string]any{"system": sys, "value": "R2"}}, "practitioner": map[string]any{"reference": "Practitioner/" + id("pra2")}})

	patients := "patient=" + id("q1") + "," + id("q2")
	ident := func(v ...string) string {
		for i := range v {
			v[i] = sys + "|" + v[i]
		}
		return "identifier=" + q(strings.Join(v, ","))
	}
	runGroups(t, c, pop, []searchGroup{
		{"Condition", "Condition", patients, []searchCase{
			{"patient=" + id("q1"), []string{"c1"}},
			{"subject=Patient/" + id("q2"), []string{"c2"}},
			{"code=" + q(snomed+"|44054006"), []string{"c1"}},
			{"code=38341003", []string{"c2"}},
			{"category=problem-list-item", []string{"c1"}},
		}},
		{"Procedure", "Procedure", patients, []searchCase{
			{"date=2021-03", []string{"pr1"}},
			{"date=ge2021-04", []string{"pr2"}},
			{"date=2021-04-02", nil},
			{"status=completed", []string{"pr1"}},
			{"code=80146002", []string{"pr1"}},
			{"category=387713003", []string{"pr1"}},
			{"patient=" + id("q2"), []string{"pr2"}},
			{"subject=Patient/" + id("q1"), []string{"pr1"}},
		}},
		{"MedicationRequest", "MedicationRequest", patients, []searchCase{
			{"code=" + q(rxnorm+"|197361"), []string{"mr1"}},
			{"status=stopped", []string{"mr2"}},
			{"category=outpatient", []string{"mr1"}},
			{"patient=" + id("q1"), []string{"mr1"}},
			{"subject=Patient/" + id("q2"), []string{"mr2"}},
		}},
		{"Immunization", "Immunization", patients, []searchCase{
			{"vaccine-code=207", []string{"im1"}},
			{"vaccine-code=" + q(cvx+"|140"), []string{"im2"}},
			{"date=2021", []string{"im1"}},
			{"date=lt2021", []string{"im2"}},
			{"status=not-done", []string{"im2"}},
			{"patient=" + id("q2"), []string{"im2"}},
		}},
		{"ServiceRequest", "ServiceRequest", patients, []searchCase{
			{"code=73761001", []string{"sr1"}},
			{"status=completed", []string{"sr2"}},
			{"category=108252007", []string{"sr1"}},
			{"subject=Patient/" + id("q2"), []string{"sr2"}},
			{"patient=" + id("q1"), []string{"sr1"}},
		}},
		{"Claim", "Claim", patients, []searchCase{
			{"created=2021-02", []string{"cl1"}},
			{"created=ge2021-03", []string{"cl2"}},
			{"status=cancelled", []string{"cl2"}},
			{"patient=" + id("q1"), []string{"cl1"}},
		}},
		{"ExplanationOfBenefit", "ExplanationOfBenefit", patients, []searchCase{
			{"created=lt2021-03", []string{"eob1"}},
			{"status=entered-in-error", []string{"eob2"}},
			{"patient=" + id("q2"), []string{"eob2"}},
		}},
		{"Coverage", "Coverage", patients, []searchCase{
			{"beneficiary=Patient/" + id("q1"), []string{"cov1"}},
			{"patient=" + id("q2"), []string{"cov2"}},
			{"status=active", []string{"cov1"}},
		}},
		{"Group", "Group", ident("G1", "G2"), []searchCase{
			{"member=Patient/" + id("q1"), []string{"g1"}},
			{"member=" + id("q2"), []string{"g1", "g2"}},
			{ident("G2"), []string{"g2"}},
			{"characteristic=" + q(sys+"|attributed"), []string{"g1"}},
		}},
		{"Practitioner", "Practitioner", "name=" + fam, []searchCase{
			{"name=" + fam + "wel", []string{"pra1"}},
			{"name=marcus", []string{"pra1"}},
			{ident("P2"), []string{"pra2"}},
		}},
		{"Organization", "Organization", "name=" + fam, []searchCase{
			{"name=" + q(fam+" hosp"), []string{"org2"}},
			{ident("O1"), []string{"org1"}},
		}},
		{"PractitionerRole", "PractitionerRole", ident("R1", "R2"), []searchCase{
			{ident("R1"), []string{"role1"}},
		}},
	})

	t.Run("Group discovery with _summary=true omits members", func(t *testing.T) {
		// Da Vinci ATR discovery (shared/reference/specs.md 3.3-3.4):
		// GET Group?identifier=...&_summary=true; large groups must come
		// back without their member lists.
		r := c.do(t, "GET", "Group?"+ident("G1")+"&_summary=true", nil)
		require.Equal(t, 200, r.Status, "%s", r)
		entries := r.get("entry").Array()
		require.Len(t, entries, 1, "%s", r)
		g := entries[0].Get("resource")
		assert.Equal(t, id("g1"), g.Get("id").String())
		assert.True(t, g.Get("identifier").Exists(), "identifier is a summary element")
		assert.False(t, g.Get("member").Exists(), "member is not a summary element")
		tags := g.Get("meta.tag.#.code").String()
		assert.Contains(t, tags, "SUBSETTED", "summary resources carry the SUBSETTED tag")
	})
}
