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

// An Erratum corrects the improvementNotation of published measure
// content whose coding contradicts itself, with the direction the
// measure's steward publishes in its human-readable specification.
// measures/equity applies the same table (KnownDirectionCorrections), so
// care gaps and equity reports never disagree about a measure's direction.
type Erratum struct {
	// URL is Measure.url. It is the key, not a version: a later version
	// that codes the notation consistently is read as coded (errata only
	// settle contradictions).
	URL string
	// Code is the notation the steward publishes: increase | decrease.
	Code string
	// Reason explains the correction to a reader of a report.
	Reason string
}

// KnownErrata returns the errata of the published content Equitas ships
// with (../shared/ecqm); a fresh slice, so callers may extend it.
func KnownErrata() []Erratum {
	return []Erratum{
		// CMS165 counts patients whose blood pressure is controlled and its
		// description says a higher score indicates better quality, so the
		// code is the defect, not the display.
		{URL: "https://madie.cms.gov/Measure/ControllingHighBloodPressureFHIR", Code: "increase",
			Reason: "CMS165 Measure.json codes improvementNotation 'decrease' (display 'increase'); " +
				"Controlling High Blood Pressure is higher-is-better, so 'increase' is used"},
		// CMS122 Glycemic Status Assessment > 9 % is inverse ("lower score
		// indicates better quality"): the code is right, the display is not.
		{URL: "https://madie.cms.gov/Measure/DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR", Code: "decrease",
			Reason: "CMS122 Measure.json codes improvementNotation 'decrease' with display 'increase'; " +
				"Glycemic Status Assessment > 9 % is lower-is-better, so 'decrease' is used"},
	}
}

func knownNotation(url string) (string, bool) {
	for _, e := range KnownErrata() {
		if e.URL == url {
			return e.Code, true
		}
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
