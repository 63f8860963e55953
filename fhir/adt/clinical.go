package adt

import (
	"strconv"
	"strings"

	"github.com/equitas/equitas/fhir/hl7v2"
)

// diagnosis is one DG1 segment (→ Condition, category encounter-diagnosis,
// and an Encounter.diagnosis entry).
type diagnosis struct {
	Code     *codeableConcept // DG1-3
	Use      *coding          // DG1-6 diagnosis type
	Rank     int              // DG1-15 priority
	Recorded string           // DG1-5
	key      string           // what identifies it within the encounter
}

// diagnosisRole maps DG1-6 (table 0052) to diagnosis-role.
var diagnosisRole = map[string]coding{
	"A": {System: "http://terminology.hl7.org/CodeSystem/diagnosis-role", Code: "AD", Display: "Admission diagnosis"},
	"F": {System: "http://terminology.hl7.org/CodeSystem/diagnosis-role", Code: "DD", Display: "Discharge diagnosis"},
	"W": {System: "http://terminology.hl7.org/CodeSystem/diagnosis-role", Code: "CM", Display: "Comorbidity diagnosis"},
}

// diagnoses maps the DG1 segments; one without a code (DG1-3) is skipped.
func (m *mapper) diagnoses(segs []*hl7v2.Segment) ([]diagnosis, error) {
	var out []diagnosis
	for _, dg := range segs {
		cc := cwe(dg.Field(3).Repetition(1), "")
		if cc == nil {
			continue
		}
		d := diagnosis{Code: cc, key: clean(dg.Field(3).Component(3).String()) + "|" + code(dg.Field(3).Component(1).String())}
		if d.key == "|" {
			d.key = "text|" + cc.Text
		}
		if u, ok := diagnosisRole[strings.ToUpper(dg.Field(6).String())]; ok {
			d.Use = &u
		}
		if r, err := strconv.Atoi(dg.Field(15).String()); err == nil && r > 0 {
			d.Rank = r
		}
		if v := dg.Field(5).Component(1).String(); v != "" {
			t, err := hl7v2.ParseTime(v, m.loc)
			if err != nil {
				return nil, &hl7v2.Error{Location: loc(dg, 5), Code: hl7v2.CodeDataType, Text: "DG1-5 diagnosis date/time is not a valid date/time", Err: err}
			}
			d.Recorded = fhirDateTime(t)
		}
		out = append(out, d)
	}
	return out, nil
}

// condition builds (or updates) the Condition of a diagnosis.
func condition(existing []byte, id, patientID, encounterID string, d diagnosis) ([]byte, error) {
	o := newObject("Condition", id)
	if existing != nil {
		var err error
		if o, err = parseObject(existing); err != nil {
			return nil, err
		}
	}
	o.setValue("category", []codeableConcept{{Coding: []coding{{
		System: "http://terminology.hl7.org/CodeSystem/condition-category", Code: "encounter-diagnosis", Display: "Encounter Diagnosis"}}}})
	o.setValue("code", d.Code)
	o.setValue("subject", reference{Reference: "Patient/" + patientID})
	o.setValue("encounter", reference{Reference: "Encounter/" + encounterID})
	if d.Recorded != "" {
		o.setValue("recordedDate", d.Recorded)
	}
	return o.bytes(), nil
}

// coverage is one IN1 segment (→ Coverage).
type coverage struct {
	Payor        reference
	PlanID       string
	PlanName     string
	SubscriberID string
	Relationship string
	Start, End   string
	key          string
}

// relationship maps IN1-17 (table 0063) to subscriber-relationship.
var relationship = map[string]string{"SEL": "self", "SPO": "spouse", "CHD": "child", "PAR": "parent", "DOM": "common", "EMC": "other", "OTH": "other"}

// coverages maps the IN1 segments; one naming no insurer (IN1-3/IN1-4) is
// skipped.
func (m *mapper) coverages(segs []*hl7v2.Segment) ([]coverage, error) {
	var out []coverage
	for _, in := range segs {
		c := coverage{
			PlanID: str(in.Field(2).Component(1)), PlanName: str(in.Field(2).Component(2)),
			SubscriberID: str(in.Field(36).Component(1)),
		}
		if c.SubscriberID == "" {
			c.SubscriberID = str(in.Field(49).Component(1))
		}
		name := str(in.Field(4).Component(1))
		company := m.cx(in.Field(3).Repetition(1))
		if company.Value == "" && name == "" {
			continue
		}
		c.Payor = reference{Display: name}
		if company.Value != "" {
			company.Type = nil
			c.Payor.Identifier = &company
		}
		if r, ok := relationship[strings.ToUpper(in.Field(17).String())]; ok {
			c.Relationship = r
		}
		for _, f := range []struct {
			n   int
			dst *string
		}{{12, &c.Start}, {13, &c.End}} {
			v := in.Field(f.n).Component(1).String()
			if v == "" {
				continue
			}
			t, err := hl7v2.ParseTime(v, m.loc)
			if err != nil {
				return nil, &hl7v2.Error{Location: loc(in, f.n), Code: hl7v2.CodeDataType, Text: "IN1-" + strconv.Itoa(f.n) + " is not a valid date", Err: err}
			}
			*f.dst = fhirDateTime(t)
		}
		if before(c.End, c.Start) {
			return nil, hl7v2.Errorf(loc(in, 13), hl7v2.CodeDataType, "IN1-13 plan expiration is before IN1-12 plan effective date")
		}
		c.key = company.System + "|" + company.Value + "|" + name + "|" + c.PlanID + "|" + c.SubscriberID
		out = append(out, c)
	}
	return out, nil
}

// coverageBody builds (or updates) the Coverage of an IN1.
func coverageBody(existing []byte, id, patientID string, c coverage) ([]byte, error) {
	o := newObject("Coverage", id)
	if existing != nil {
		var err error
		if o, err = parseObject(existing); err != nil {
			return nil, err
		}
	}
	o.setValue("status", "active")
	if c.SubscriberID != "" {
		o.setValue("subscriberId", c.SubscriberID)
	}
	o.setValue("beneficiary", reference{Reference: "Patient/" + patientID})
	if c.Relationship != "" {
		o.setValue("relationship", codeableConcept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/subscriber-relationship", Code: c.Relationship}}})
	}
	if c.Start != "" || c.End != "" {
		o.setValue("period", period{Start: c.Start, End: c.End})
	}
	o.setValue("payor", []reference{c.Payor})
	if c.PlanID != "" {
		type class struct {
			Type  codeableConcept `json:"type"`
			Value string          `json:"value"`
			Name  string          `json:"name,omitempty"`
		}
		o.setValue("class", []class{{Type: codeableConcept{Coding: []coding{{System: "http://terminology.hl7.org/CodeSystem/coverage-class", Code: "plan"}}},
			Value: c.PlanID, Name: c.PlanName}})
	}
	return o.bytes(), nil
}
