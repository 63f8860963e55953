package equity

import (
	"strings"

	"github.com/equitas/equitas/measures/measure"
)

// A DirectionCorrection overrides the improvement notation published
// content gets wrong. Gaps, the "best" reference and the equity score all
// hinge on the direction, so a wrong one silently inverts a report.
type DirectionCorrection struct {
	// Measure matches Measure.name or the last path segment of Measure.url.
	Measure   string
	Direction Direction
	Reason    string
}

// KnownDirectionCorrections are the content defects corrected by default.
//
// CMS165 (Controlling High Blood Pressure, ControllingHighBloodPressureFHIR
// in ../shared/ecqm) codes its group's cqfm-improvementNotation as
// "decrease" with display "increase"; the measure counts patients whose
// blood pressure is controlled and its description says a higher score
// indicates better quality, so the code is the defect, not the display.
func KnownDirectionCorrections() []DirectionCorrection {
	return []DirectionCorrection{{
		Measure:   "ControllingHighBloodPressureFHIR",
		Direction: Increase,
		Reason: "CMS165 Measure.json codes improvementNotation 'decrease' (display 'increase'); " +
			"Controlling High Blood Pressure is higher-is-better, so 'increase' is used",
	}}
}

// ResolveDirection is the direction of group g of def: a correction
// matching the measure wins, then the group's improvementNotation, then
// the measure's, then FHIR's default (increase). note explains a
// correction that changed the published code ("" otherwise).
func ResolveDirection(def *measure.Definition, g *measure.Group, corrections []DirectionCorrection) (dir Direction, note string) {
	code := def.ImprovementNotation
	if g != nil && g.ImprovementNotation != "" {
		code = g.ImprovementNotation
	}
	dir = ParseDirection(code)
	seg := def.URL[strings.LastIndexByte(def.URL, '/')+1:]
	for _, c := range corrections {
		if c.Measure == "" || (c.Measure != def.Name && c.Measure != seg && c.Measure != def.ID) {
			continue
		}
		if c.Direction != dir {
			return c.Direction, c.Reason
		}
		return dir, ""
	}
	return dir, ""
}
