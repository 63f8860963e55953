package caregaps

import (
	"strings"

	"github.com/tidwall/gjson"
)

// Notation is the improvementNotation a gap is judged by, with where it
// came from.
type Notation struct {
	// Code is increase (higher score is better: the numerator closes the
	// gap) or decrease (inverse measure: the numerator is the gap).
	Code string
	// Source is "override", "errata", "group" (the cqfm-improvementNotation
	// extension on the group) or "measure" (Measure.improvementNotation).
	Source string
	// Conflict describes a self-contradictory coding (its display names the
	// opposite direction); empty when the coding is consistent.
	Conflict string
}

const extImprovementNotation = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-improvementNotation"

// knownNotation lists published measure content whose improvementNotation
// coding contradicts itself, with the direction the measure's steward
// publishes in its human-readable specification. The Measure.url, not a
// version, is the key: a later version that codes the notation
// consistently is read as coded (errata only settle contradictions).
func knownNotation(url string) (string, bool) {
	switch url {
	// CMS165 Controlling High Blood Pressure: "higher score indicates
	// better quality"; the MADiE export codes decrease with display
	// "increase".
	case "https://madie.cms.gov/Measure/ControllingHighBloodPressureFHIR":
		return "increase", true
	// CMS122 Glycemic Status Assessment > 9 % is inverse ("lower score
	// indicates better quality"): the code is right, the display is not.
	case "https://madie.cms.gov/Measure/DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR":
		return "decrease", true
	}
	return "", false
}

// ResolveNotation decides the improvementNotation of group gi of a Measure
// (raw FHIR JSON). The rule, in order:
//
//  1. an operator override for the Measure (overrides keyed by url|version
//     or url) wins;
//  2. otherwise the coding is read: the group's cqfm-improvementNotation
//     extension, else Measure.improvementNotation, preferring a coding of
//     the measure-improvement-notation system; when its display agrees
//     with its code (or there is none), the code is the notation;
//  3. when the display names the opposite direction ("increase" on a
//     decrease code, as CMS165 and CMS122 ship), the coding contradicts
//     itself: the errata table of known published content decides, else
//     the code does (in FHIR a display never changes a code's meaning),
//     and Conflict records the contradiction so callers can warn.
//
// An empty Code means the Measure states no notation; gaps then assume
// increase, the convention of every proportion measure without one.
func ResolveNotation(raw []byte, gi int, overrides map[string]string) Notation {
	m := gjson.ParseBytes(raw)
	url, version := m.Get("url").String(), m.Get("version").String()
	if c, ok := overrides[url+"|"+version]; ok && c != "" {
		return Notation{Code: c, Source: "override"}
	}
	if c, ok := overrides[url]; ok && c != "" {
		return Notation{Code: c, Source: "override"}
	}
	var coding gjson.Result
	source := ""
	m.Get("group").ForEach(func(k, g gjson.Result) bool {
		if int(k.Int()) != gi {
			return true
		}
		g.Get("extension").ForEach(func(_, e gjson.Result) bool {
			if e.Get("url").String() == extImprovementNotation {
				coding = pickCoding(e.Get("valueCodeableConcept"))
				source = "group"
				return false
			}
			return true
		})
		return false
	})
	if !coding.Exists() {
		coding = pickCoding(m.Get("improvementNotation"))
		source = "measure"
	}
	code := coding.Get("code").String()
	if code == "" {
		return Notation{}
	}
	display := strings.ToLower(coding.Get("display").String())
	opposite := map[string][]string{"increase": {"decrease", "lower"}, "decrease": {"increase", "higher"}}[code]
	for _, word := range opposite {
		if strings.Contains(display, word) {
			n := Notation{Code: code, Source: source,
				Conflict: "improvementNotation code " + code + " has display " + coding.Get("display").String()}
			if c, ok := knownNotation(url); ok {
				n.Code, n.Source = c, "errata"
			}
			return n
		}
	}
	return Notation{Code: code, Source: source}
}

// pickCoding returns the measure-improvement-notation coding of a
// CodeableConcept, else its first coding with a code.
func pickCoding(cc gjson.Result) gjson.Result {
	var first gjson.Result
	var found gjson.Result
	cc.Get("coding").ForEach(func(_, c gjson.Result) bool {
		if c.Get("code").String() == "" {
			return true
		}
		if !first.Exists() {
			first = c
		}
		if c.Get("system").String() == "http://terminology.hl7.org/CodeSystem/measure-improvement-notation" {
			found = c
			return false
		}
		return true
	})
	if found.Exists() {
		return found
	}
	return first
}
