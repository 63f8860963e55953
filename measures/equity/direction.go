package equity

import (
	"strings"

	"github.com/equitas/equitas/measures/caregaps"
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

// KnownDirectionCorrections are the content defects corrected by default:
// the errata table of measures/caregaps (caregaps.KnownErrata), so care
// gaps and equity reports judge every measure in the same direction. A
// correction matches the last path segment of the erratum's Measure.url,
// which is the measure's name in the shipped content.
//
// Unlike caregaps.ResolveNotation, which applies an erratum only when the
// coding contradicts itself, a correction here applies whatever the code:
// measure.Definition keeps the code but not the display, so the
// contradiction cannot be seen at this layer.
func KnownDirectionCorrections() []DirectionCorrection {
	errata := caregaps.KnownErrata()
	out := make([]DirectionCorrection, len(errata))
	for i, e := range errata {
		out[i] = DirectionCorrection{Measure: e.URL[strings.LastIndexByte(e.URL, '/')+1:], Direction: ParseDirection(e.Code), Reason: e.Reason}
	}
	return out
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
