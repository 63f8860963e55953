package measure

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Population codes from http://terminology.hl7.org/CodeSystem/measure-population.
const (
	InitialPopulation           = "initial-population"
	Denominator                 = "denominator"
	DenominatorExclusion        = "denominator-exclusion"
	DenominatorException        = "denominator-exception"
	Numerator                   = "numerator"
	NumeratorExclusion          = "numerator-exclusion"
	MeasurePopulation           = "measure-population"
	MeasurePopulationExclusion  = "measure-population-exclusion"
	MeasureObservation          = "measure-observation"
	PopulationSystem            = "http://terminology.hl7.org/CodeSystem/measure-population"
	ScoringSystem               = "http://terminology.hl7.org/CodeSystem/measure-scoring"
	ImprovementNotationSystem   = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
	extScoring                  = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-scoring"
	extPopulationBasis          = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-populationBasis"
	extImprovementNotation      = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-improvementNotation"
	extCriteriaReference        = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-criteriaReference"
	extCriteriaReferenceR5      = "http://hl7.org/fhir/StructureDefinition/cqf-criteriaReference"
	extAggregateMethod          = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-aggregateMethod"
	extAppliesTo                = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-appliesTo"
	languageCQLIdentifier       = "text/cql-identifier"
	languageCQLIdentifierLegacy = "text/cql.identifier"
	languageCQL                 = "text/cql"
)

// Scoring is a measure scoring type.
type Scoring string

// Scoring types of the CQF Measures IG.
const (
	Proportion         Scoring = "proportion"
	Ratio              Scoring = "ratio"
	ContinuousVariable Scoring = "continuous-variable"
	Cohort             Scoring = "cohort"
)

// BooleanBasis is the population basis of patient-based measures.
const BooleanBasis = "boolean"

// Coding is a FHIR Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Version string `json:"version,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// Concept is a FHIR CodeableConcept.
type Concept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// IsZero reports whether the concept carries nothing.
func (c *Concept) IsZero() bool { return c == nil || (len(c.Coding) == 0 && c.Text == "") }

// Definition is what the evaluator needs of a FHIR Measure.
type Definition struct {
	ID      string
	URL     string
	Version string
	Name    string
	Title   string
	// Library is the canonical of the primary library (Measure.library[0]).
	Library string
	// EffectivePeriod bounds as written (dates or dateTimes); either may be empty.
	EffectiveStart, EffectiveEnd string
	// Scoring at measure level; groups may override it.
	Scoring             Scoring
	ImprovementNotation string // increase | decrease | ""
	Groups              []Group
	SupplementalData    []SupplementalData
}

// Canonical returns url|version (or url when there is no version).
func (d *Definition) Canonical() string {
	if d.Version == "" {
		return d.URL
	}
	return d.URL + "|" + d.Version
}

// Group is one Measure.group.
type Group struct {
	ID    string
	Code  *Concept
	Index int
	// Scoring is the effective scoring (group extension, else measure).
	Scoring Scoring
	// Basis is "boolean" for patient-based groups, else a FHIR resource type
	// (episode of care: populations are lists of that type).
	Basis string
	// ImprovementNotation is the effective notation (group extension, else measure).
	ImprovementNotation string
	// groupImprovementNotation records whether it came from the group, which
	// decides where DEQM reports it.
	GroupLevelImprovementNotation bool
	GroupLevelScoring             bool
	Populations                   []Population
	Stratifiers                   []Stratifier
}

// Population is one Measure.group.population.
type Population struct {
	ID         string
	Code       string
	Expression string
	// CriteriaReference names the population (by id) a measure-observation observes.
	CriteriaReference string
	// AggregateMethod is the cqfm-aggregateMethod of a measure-observation.
	AggregateMethod string
}

// Stratifier is one Measure.group.stratifier: either a single criteria
// expression or components.
type Stratifier struct {
	ID         string
	Code       *Concept
	Expression string
	Components []StratifierComponent
	// AppliesTo lists population codes the stratifier applies to (cqfm-appliesTo); empty means all.
	AppliesTo []string
}

// StratifierComponent is one component of a multi-component stratifier.
type StratifierComponent struct {
	Code       *Concept
	Expression string
}

// SupplementalData is one Measure.supplementalData.
type SupplementalData struct {
	ID         string
	Code       *Concept
	Expression string
	Usage      []Concept
}

// Population looks a population up by code; nil if the group has none.
func (g *Group) Population(code string) *Population {
	for i := range g.Populations {
		if g.Populations[i].Code == code {
			return &g.Populations[i]
		}
	}
	return nil
}

// IsEpisodeBased reports whether populations are lists of resources.
func (g *Group) IsEpisodeBased() bool { return g.Basis != "" && g.Basis != BooleanBasis }

// ErrInvalidMeasure wraps every structural problem found in a Measure.
var ErrInvalidMeasure = errors.New("invalid Measure")

type extensionJSON struct {
	URL                  string          `json:"url"`
	ValueCode            string          `json:"valueCode"`
	ValueString          string          `json:"valueString"`
	ValueCodeableConcept *Concept        `json:"valueCodeableConcept"`
	Extension            []extensionJSON `json:"extension"`
}

type expressionJSON struct {
	Language   string `json:"language"`
	Expression string `json:"expression"`
}

type measureJSON struct {
	ResourceType    string          `json:"resourceType"`
	ID              string          `json:"id"`
	URL             string          `json:"url"`
	Version         string          `json:"version"`
	Name            string          `json:"name"`
	Title           string          `json:"title"`
	Library         []string        `json:"library"`
	Extension       []extensionJSON `json:"extension"`
	EffectivePeriod *struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"effectivePeriod"`
	Scoring             *Concept `json:"scoring"`
	ImprovementNotation *Concept `json:"improvementNotation"`
	Group               []struct {
		ID         string          `json:"id"`
		Code       *Concept        `json:"code"`
		Extension  []extensionJSON `json:"extension"`
		Population []struct {
			ID        string          `json:"id"`
			Code      *Concept        `json:"code"`
			Extension []extensionJSON `json:"extension"`
			Criteria  expressionJSON  `json:"criteria"`
		} `json:"population"`
		Stratifier []struct {
			ID        string          `json:"id"`
			Code      *Concept        `json:"code"`
			Extension []extensionJSON `json:"extension"`
			Criteria  *expressionJSON `json:"criteria"`
			Component []struct {
				Code     *Concept       `json:"code"`
				Criteria expressionJSON `json:"criteria"`
			} `json:"component"`
		} `json:"stratifier"`
	} `json:"group"`
	SupplementalData []struct {
		ID       string         `json:"id"`
		Code     *Concept       `json:"code"`
		Usage    []Concept      `json:"usage"`
		Criteria expressionJSON `json:"criteria"`
	} `json:"supplementalData"`
}

// ParseDefinition reads a FHIR Measure resource.
func ParseDefinition(raw []byte) (*Definition, error) {
	var m measureJSON
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: malformed JSON: %v", ErrInvalidMeasure, err)
	}
	if m.ResourceType != "Measure" {
		return nil, fmt.Errorf("%w: resourceType is %q, want Measure", ErrInvalidMeasure, m.ResourceType)
	}
	if m.URL == "" {
		return nil, fmt.Errorf("%w: Measure %q has no url", ErrInvalidMeasure, m.ID)
	}
	if len(m.Library) == 0 {
		return nil, fmt.Errorf("%w: Measure %s has no library", ErrInvalidMeasure, m.URL)
	}
	d := &Definition{ID: m.ID, URL: m.URL, Version: m.Version, Name: m.Name, Title: m.Title, Library: m.Library[0]}
	if m.EffectivePeriod != nil {
		d.EffectiveStart, d.EffectiveEnd = m.EffectivePeriod.Start, m.EffectivePeriod.End
	}
	d.Scoring = Scoring(code(m.Scoring, ScoringSystem))
	d.ImprovementNotation = code(m.ImprovementNotation, ImprovementNotationSystem)
	if len(m.Group) == 0 {
		return nil, fmt.Errorf("%w: Measure %s has no group", ErrInvalidMeasure, m.URL)
	}
	for gi, mg := range m.Group {
		g := Group{ID: mg.ID, Code: mg.Code, Index: gi, Scoring: d.Scoring, Basis: BooleanBasis, ImprovementNotation: d.ImprovementNotation}
		for _, e := range mg.Extension {
			switch e.URL {
			case extScoring:
				if s := code(e.ValueCodeableConcept, ScoringSystem); s != "" {
					g.Scoring, g.GroupLevelScoring = Scoring(s), true
				}
			case extPopulationBasis:
				if e.ValueCode != "" {
					g.Basis = e.ValueCode
				}
			case extImprovementNotation:
				if s := code(e.ValueCodeableConcept, ImprovementNotationSystem); s != "" {
					g.ImprovementNotation, g.GroupLevelImprovementNotation = s, true
				}
			}
		}
		where := fmt.Sprintf("Measure %s group[%d]", m.URL, gi)
		switch g.Scoring {
		case Proportion, Ratio, ContinuousVariable, Cohort:
		case "":
			return nil, fmt.Errorf("%w: %s has no scoring (neither Measure.scoring nor the cqfm-scoring extension)", ErrInvalidMeasure, where)
		default:
			return nil, fmt.Errorf("%w: %s has unknown scoring %q", ErrInvalidMeasure, where, g.Scoring)
		}
		for pi, mp := range mg.Population {
			p := Population{ID: mp.ID, Code: code(mp.Code, PopulationSystem)}
			if p.Code == "" {
				return nil, fmt.Errorf("%w: %s population[%d] has no measure-population code", ErrInvalidMeasure, where, pi)
			}
			expr, err := identifier(mp.Criteria)
			if err != nil {
				return nil, fmt.Errorf("%w: %s population[%d] (%s): %v", ErrInvalidMeasure, where, pi, p.Code, err)
			}
			p.Expression = expr
			for _, e := range mp.Extension {
				switch e.URL {
				case extCriteriaReference, extCriteriaReferenceR5:
					p.CriteriaReference = e.ValueString
				case extAggregateMethod:
					p.AggregateMethod = e.ValueCode
				}
			}
			g.Populations = append(g.Populations, p)
		}
		if err := checkPopulations(&g); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidMeasure, where, err)
		}
		for si, ms := range mg.Stratifier {
			s := Stratifier{ID: ms.ID, Code: ms.Code}
			for _, e := range ms.Extension {
				if e.URL == extAppliesTo {
					if c := code(e.ValueCodeableConcept, PopulationSystem); c != "" {
						s.AppliesTo = append(s.AppliesTo, c)
					}
				}
			}
			if ms.Criteria != nil && ms.Criteria.Expression != "" {
				expr, err := identifier(*ms.Criteria)
				if err != nil {
					return nil, fmt.Errorf("%w: %s stratifier[%d]: %v", ErrInvalidMeasure, where, si, err)
				}
				s.Expression = expr
			}
			for ci, mc := range ms.Component {
				expr, err := identifier(mc.Criteria)
				if err != nil {
					return nil, fmt.Errorf("%w: %s stratifier[%d] component[%d]: %v", ErrInvalidMeasure, where, si, ci, err)
				}
				s.Components = append(s.Components, StratifierComponent{Code: mc.Code, Expression: expr})
			}
			// Published measures carry placeholder stratifiers with a language
			// and no expression (e.g. CMS165); they stratify nothing.
			if s.Expression == "" && len(s.Components) == 0 {
				continue
			}
			g.Stratifiers = append(g.Stratifiers, s)
		}
		d.Groups = append(d.Groups, g)
	}
	for i, ms := range m.SupplementalData {
		expr, err := identifier(ms.Criteria)
		if err != nil {
			return nil, fmt.Errorf("%w: Measure %s supplementalData[%d]: %v", ErrInvalidMeasure, m.URL, i, err)
		}
		id := ms.ID
		if id == "" {
			id = fmt.Sprintf("sde-%d", i)
		}
		d.SupplementalData = append(d.SupplementalData, SupplementalData{ID: id, Code: ms.Code, Usage: ms.Usage, Expression: expr})
	}
	return d, nil
}

// checkPopulations enforces what each scoring requires, so evaluation can
// rely on it.
func checkPopulations(g *Group) error {
	seen := map[string]int{}
	for _, p := range g.Populations {
		seen[p.Code]++
	}
	need := map[Scoring][]string{
		Proportion:         {InitialPopulation, Denominator, Numerator},
		Ratio:              {InitialPopulation, Denominator, Numerator},
		ContinuousVariable: {InitialPopulation, MeasurePopulation, MeasureObservation},
		Cohort:             {InitialPopulation},
	}[g.Scoring]
	for _, c := range need {
		if seen[c] == 0 {
			return fmt.Errorf("%s scoring needs a %s population", g.Scoring, c)
		}
	}
	for c, n := range seen {
		if n > 1 && c != InitialPopulation && c != MeasureObservation {
			return fmt.Errorf("population %s appears %d times", c, n)
		}
	}
	return nil
}

func identifier(e expressionJSON) (string, error) {
	switch e.Language {
	case languageCQLIdentifier, languageCQLIdentifierLegacy, languageCQL, "":
	default:
		return "", fmt.Errorf("criteria language %q is not CQL", e.Language)
	}
	if strings.TrimSpace(e.Expression) == "" {
		return "", errors.New("criteria has no expression")
	}
	return strings.Trim(strings.TrimSpace(e.Expression), `"`), nil
}

// code returns the first code of c in system (or of any system when none matches).
func code(c *Concept, system string) string {
	if c == nil {
		return ""
	}
	for _, cd := range c.Coding {
		if cd.System == system && cd.Code != "" {
			return cd.Code
		}
	}
	for _, cd := range c.Coding {
		if cd.Code != "" {
			return cd.Code
		}
	}
	return ""
}
