package elm

import (
	"strings"

	"github.com/equitas/equitas/measures/elm/cql"
	"github.com/equitas/equitas/measures/elm/fhirmodel"
)

// usCoreVitalCodes maps vital-sign profiles to their LOINC codes.
var vitalProfiles = map[string][]string{
	"http://hl7.org/fhir/StructureDefinition/bp":                             {"85354-9"},
	"http://hl7.org/fhir/StructureDefinition/bodyweight":                     {"29463-7"},
	"http://hl7.org/fhir/StructureDefinition/bodyheight":                     {"8302-2"},
	"http://hl7.org/fhir/StructureDefinition/bmi":                            {"39156-5"},
	"http://hl7.org/fhir/StructureDefinition/heartrate":                      {"8867-4"},
	"http://hl7.org/fhir/StructureDefinition/resprate":                       {"9279-1"},
	"http://hl7.org/fhir/StructureDefinition/bodytemp":                       {"8310-5"},
	"http://hl7.org/fhir/StructureDefinition/oxygensat":                      {"2708-6", "59408-5"},
	"http://hl7.org/fhir/StructureDefinition/headcircum":                     {"9843-4"},
	"http://hl7.org/fhir/StructureDefinition/vitalspanel":                    {"85353-1"},
	"http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure": {"85354-9"},
	"http://hl7.org/fhir/us/core/StructureDefinition/us-core-bmi":            {"39156-5"},
}

// inferProfile returns a content test deciding whether an untagged resource
// conforms to a QI-Core / US Core profile.
func inferProfile(typ, profile string) func(*cql.FHIR) bool {
	if codes, ok := vitalProfiles[profile]; ok {
		return func(r *cql.FHIR) bool { return hasLoinc(r.Node.Get("code"), codes) }
	}
	name := profile[strings.LastIndexByte(profile, '/')+1:]
	negation := strings.Contains(name, "not") && (strings.Contains(name, "notdone") || strings.Contains(name, "notrequested") || strings.Contains(name, "notgiven") || strings.Contains(name, "notperformed"))
	switch {
	case negation:
		return func(r *cql.FHIR) bool { return isNegated(r) }
	case name == "qicore-condition-encounter-diagnosis":
		return func(r *cql.FHIR) bool { return hasCategory(r, "encounter-diagnosis") }
	case name == "qicore-condition-problems-health-concerns":
		return func(r *cql.FHIR) bool { return hasCategory(r, "problem-list-item") || hasCategory(r, "health-concern") }
	case name == "qicore-observation-lab" || name == "us-core-observation-lab":
		return func(r *cql.FHIR) bool { return hasCategory(r, "laboratory") }
	case name == "qicore-simple-observation" || name == "qicore-observation":
		return func(r *cql.FHIR) bool { return true }
	}
	// Any other QI-Core profile of the type: positive (non-negated) resources.
	return func(r *cql.FHIR) bool { return !isNegated(r) }
}

func hasLoinc(cc *fhirmodel.Node, codes []string) bool {
	cs := cc.Get("coding")
	if cs == nil {
		return false
	}
	for _, c := range cs.Vals {
		if s := c.Get("system"); s == nil || s.Str != "http://loinc.org" {
			continue
		}
		if code := c.Get("code"); code != nil {
			for _, w := range codes {
				if code.Str == w {
					return true
				}
			}
		}
	}
	return false
}

func hasCategory(r *cql.FHIR, code string) bool {
	cats := r.Node.Get("category")
	if cats == nil {
		return false
	}
	list := cats.Vals
	if cats.Kind == fhirmodel.Object {
		list = []*fhirmodel.Node{cats}
	}
	for _, cat := range list {
		cs := cat.Get("coding")
		if cs == nil {
			continue
		}
		for _, c := range cs.Vals {
			if x := c.Get("code"); x != nil && x.Str == code {
				return true
			}
		}
	}
	return false
}

// isNegated recognises "not done" resources: doNotPerform, status
// not-done / cancelled with a statusReason, or MedicationAdministration
// notGiven patterns.
func isNegated(r *cql.FHIR) bool {
	n := r.Node
	if d := n.Get("doNotPerform"); d != nil && d.Bool {
		return true
	}
	if s := n.Get("status"); s != nil && s.Str == "not-done" {
		return true
	}
	if s := n.Get("status"); s != nil && s.Str == "cancelled" {
		if n.Get("statusReason") != nil {
			return true
		}
		// QI-Core ObservationNotDone carries the reason as an extension.
		if exts := n.Get("extension"); exts != nil {
			for _, e := range exts.Vals {
				if u := e.Get("url"); u != nil && strings.Contains(u.Str, "notDoneReason") {
					return true
				}
			}
		}
	}
	return false
}
