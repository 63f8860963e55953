package badgerstore_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/equitas/equitas/store"
)

var (
	families = []string{"Müller", "Muller", "Smith", "García", "Nguyen", "O'Brien", "Øberg", "Schmidt", "Johnson", "Lee"}
	givens   = []string{"Anna", "José", "Zoë", "Li", "Mary", "John", "Renée", "Ahmed", "Fatima", "Ola"}
	loinc    = []string{"4548-4", "2345-7", "8480-6", "8462-4", "39156-5", "2093-3", "718-7", "29463-7"}
	statuses = []string{"final", "amended", "preliminary", "cancelled"}
)

// population returns Patient writes and, per patient, perPatient clinical
// resources (Observations, Encounters, Conditions) with deterministic
// pseudo-random values, including partial dates, zones and periods.
func population(seed uint64, patients, perPatient int) []store.Write {
	rng := rand.New(rand.NewPCG(seed, 7))
	var ws []store.Write
	date := func() string {
		y, m, d := 2015+rng.IntN(8), 1+rng.IntN(12), 1+rng.IntN(28)
		switch rng.IntN(6) {
		case 0:
			return fmt.Sprintf("%d", y)
		case 1:
			return fmt.Sprintf("%d-%02d", y, m)
		case 2:
			return fmt.Sprintf("%d-%02d-%02d", y, m, d)
		case 3:
			return fmt.Sprintf("%d-%02d-%02dT%02d:%02d:00-05:00", y, m, d, rng.IntN(24), rng.IntN(60))
		default:
			return fmt.Sprintf("%d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, rng.IntN(24), rng.IntN(60), rng.IntN(60))
		}
	}
	for p := range patients {
		pid := fmt.Sprintf("pat%05d", p)
		gender := []string{"female", "male", "other", ""}[rng.IntN(4)]
		g := ""
		if gender != "" {
			g = fmt.Sprintf(`"gender":%q,`, gender)
		}
		ws = append(ws, store.Write{Op: store.OpPut, Type: "Patient", ID: pid, Body: []byte(fmt.Sprintf(
			`{"resourceType":"Patient",%s"birthDate":"%d-%02d-%02d","name":[{"family":%q,"given":[%q]}],"identifier":[{"system":"urn:mrn","value":"%d"}],`+
				`"address":[{"line":["%d Main St"],"city":"Springfield","state":"MA","postalCode":"01101"}],"generalPractitioner":[{"reference":"Practitioner/d%d"}]}`,
			g, 1930+rng.IntN(90), 1+rng.IntN(12), 1+rng.IntN(28), families[rng.IntN(len(families))], givens[rng.IntN(len(givens))], p, p, rng.IntN(20)))})
		for i := range perPatient {
			id := fmt.Sprintf("%s-%d", pid, i)
			switch i % 5 {
			case 0:
				ws = append(ws, store.Write{Op: store.OpPut, Type: "Encounter", ID: id, Body: []byte(fmt.Sprintf(
					`{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},`+
						`"type":[{"coding":[{"system":"http://snomed.info/sct","code":"185349003","display":"Encounter for check up"}]}],`+
						`"subject":{"reference":"Patient/%s"},"period":{"start":%q,"end":%q},"serviceProvider":{"reference":"Organization/o%d"}}`,
					pid, date(), date(), rng.IntN(5)))})
			case 1:
				ws = append(ws, store.Write{Op: store.OpPut, Type: "Condition", ID: id, Body: []byte(fmt.Sprintf(
					`{"resourceType":"Condition","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},`+
						`"code":{"coding":[{"system":"http://snomed.info/sct","code":"%d","display":"Condition %d"}]},"subject":{"reference":"Patient/%s"},"onsetDateTime":%q}`,
					44054006+rng.IntN(10), rng.IntN(10), pid, date()))})
			default:
				ws = append(ws, store.Write{Op: store.OpPut, Type: "Observation", ID: id, Body: []byte(fmt.Sprintf(
					`{"resourceType":"Observation","status":%q,"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],`+
						`"code":{"coding":[{"system":"http://loinc.org","code":%q,"display":"Lab %d"}],"text":"Lab test"},"subject":{"reference":"Patient/%s"},`+
						`"encounter":{"reference":"Encounter/%s-0"},"effectiveDateTime":%q,"issued":"2023-01-01T00:00:00Z",`+
						`"valueQuantity":{"value":%d.%d,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`,
					statuses[rng.IntN(len(statuses))], loinc[rng.IntN(len(loinc))], i, pid, pid, date(), rng.IntN(300), rng.IntN(10)))})
			}
		}
	}
	return ws
}
