package report

import (
	"crypto/rand"
	"fmt"
	"sort"
	"time"

	"github.com/equitas/equitas/measures/measure"
)

// Report types (MeasureReport.type).
const (
	TypeIndividual  = "individual"
	TypeSubjectList = "subject-list"
	TypeSummary     = "summary"
)

// Options are the report-level facts that do not come from the Measure.
type Options struct {
	// Period is the measurement period as it should appear in the report.
	Period Period
	// Date stamps the report; zero means time.Now().
	Date time.Time
	// Reporter is a reference such as "Organization/123"; DEQM requires one,
	// so leaving it (and ReporterDisplay) empty yields a report that lacks it.
	Reporter string
	// ReporterDisplay is the reporter's display text (alone, it makes a
	// display-only reference).
	ReporterDisplay string
	// SubjectItem, when set, gives the reference a subject-list List holds
	// for a patient, e.g. the patient's individual MeasureReport as DEQM
	// subject lists do; nil lists "Patient/<id>".
	SubjectItem func(patientID string) string
}

var populationDisplay = map[string]string{
	measure.InitialPopulation:          "Initial Population",
	measure.Denominator:                "Denominator",
	measure.DenominatorExclusion:       "Denominator Exclusion",
	measure.DenominatorException:       "Denominator Exception",
	measure.Numerator:                  "Numerator",
	measure.NumeratorExclusion:         "Numerator Exclusion",
	measure.MeasurePopulation:          "Measure Population",
	measure.MeasurePopulationExclusion: "Measure Population Exclusion",
	measure.MeasureObservation:         "Measure Observation",
}

func populationCode(code string) measure.Concept {
	return measure.Concept{Coding: []measure.Coding{{System: measure.PopulationSystem, Code: code, Display: populationDisplay[code]}}}
}

func notationConcept(code string) *measure.Concept {
	if code == "" {
		return nil
	}
	display := map[string]string{"increase": "Increased score indicates improvement", "decrease": "Decreased score indicates improvement"}[code]
	return &measure.Concept{Coding: []measure.Coding{{System: measure.ImprovementNotationSystem, Code: code, Display: display}}}
}

// header fills what every report type shares.
func header(def *measure.Definition, opts Options, typ, profile string) *MeasureReport {
	date := opts.Date
	if date.IsZero() {
		date = time.Now()
	}
	r := &MeasureReport{
		ResourceType: "MeasureReport",
		ID:           newID(),
		Meta:         &Meta{Profile: []string{profile}},
		Status:       "complete",
		Type:         typ,
		Measure:      def.Canonical(),
		Date:         date.UTC().Format(time.RFC3339),
	}
	if opts.Period != (Period{}) {
		p := opts.Period
		r.Period = &p
	}
	if opts.Reporter != "" || opts.ReporterDisplay != "" {
		r.Reporter = &Reference{Reference: opts.Reporter, Display: opts.ReporterDisplay}
	}
	// DEQM: improvementNotation at the root when the Measure states it
	// there; group-level notations go on each group.
	if def.ImprovementNotation != "" {
		r.ImprovementNotation = notationConcept(def.ImprovementNotation)
	}
	return r
}

// groupHeader returns a report group without populations.
func groupHeader(def *measure.Definition, g *measure.Group) Group {
	out := Group{ID: g.ID, Code: g.Code}
	// DEQM deqm-3: scoring at the root xor on every group; Equitas always
	// puts it on the group because groups may differ.
	out.Extension = append(out.Extension, Extension{URL: ExtMeasureScoring, ValueCodeableConcept: &measure.Concept{
		Coding: []measure.Coding{{System: measure.ScoringSystem, Code: string(g.Scoring)}}}})
	if g.ImprovementNotation != "" && (g.GroupLevelImprovementNotation || def.ImprovementNotation == "") {
		out.Extension = append(out.Extension, Extension{URL: ExtGroupImprovementNotation, ValueCodeableConcept: notationConcept(g.ImprovementNotation)})
	}
	if g.IsEpisodeBased() {
		out.Extension = append(out.Extension, Extension{URL: ExtPopulationBasis, ValueCode: g.Basis})
	}
	return out
}

func stratifierCode(s *measure.Stratifier) []measure.Concept {
	if !s.Code.IsZero() {
		return []measure.Concept{*s.Code}
	}
	// DEQM requires a code; fall back to the criteria as text.
	text := s.Expression
	if text == "" {
		text = s.ID
	}
	return []measure.Concept{{Text: text}}
}

func stratumFields(v measure.StratumValue) (*measure.Concept, []Component) {
	if v.Value != nil {
		c := v.Value.Concept
		return &c, nil
	}
	comps := make([]Component, 0, len(v.Components))
	for _, c := range v.Components {
		code := measure.Concept{Text: "component"}
		if !c.Code.IsZero() {
			code = *c.Code
		}
		comps = append(comps, Component{Code: code, Value: c.Value.Concept})
	}
	return nil, comps
}

// applies reports whether a stratifier reports population code
// (cqfm-appliesTo; none listed means every population).
func applies(s *measure.Stratifier, code string) bool {
	if len(s.AppliesTo) == 0 {
		return true
	}
	for _, c := range s.AppliesTo {
		if c == code {
			return true
		}
	}
	return false
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Individual builds the individual report of one patient.
func Individual(def *measure.Definition, opts Options, r *measure.PatientResult) *MeasureReport {
	rep := header(def, opts, TypeIndividual, ProfileIndividual)
	rep.Subject = &Reference{Reference: "Patient/" + r.PatientID}
	if r.Err != nil {
		rep.Status = "error"
		rep.Extension = append(rep.Extension, Extension{URL: ExtEvaluationError, ValueString: r.Err.Error()})
	}
	for gi := range def.Groups {
		g := &def.Groups[gi]
		out := groupHeader(def, g)
		var gr *measure.GroupResult
		if gi < len(r.Groups) {
			gr = &r.Groups[gi]
		}
		count := func(code string) int {
			if gr == nil {
				return 0
			}
			return gr.Count(code)
		}
		for pi, p := range g.Populations {
			n := 0
			if gr != nil && pi < len(gr.Populations) {
				n = gr.Populations[pi].Count()
			}
			out.Population = append(out.Population, Population{ID: p.ID, Code: populationCode(p.Code), Count: n})
		}
		if gr != nil {
			if s, ok := measure.Score(g, count, func(i int) []float64 { return obsValues(gr.Populations[i].Observations, nil) }); ok {
				out.MeasureScore = &Quantity{Value: s}
			}
			for si := range g.Stratifiers {
				if si >= len(gr.Stratifiers) {
					break
				}
				st := Stratifier{ID: g.Stratifiers[si].ID, Code: stratifierCode(&g.Stratifiers[si])}
				for _, su := range gr.Stratifiers[si].Strata {
					sv, comps := stratumFields(su.Value)
					stratum := Stratum{Value: sv, Component: comps}
					for pi, p := range g.Populations {
						if !applies(&g.Stratifiers[si], p.Code) {
							continue
						}
						n := countIn(gr.Populations[pi].Members, su.Units)
						stratum.Population = append(stratum.Population, Population{ID: p.ID, Code: populationCode(p.Code), Count: n})
					}
					c := func(code string) int {
						for pi, p := range g.Populations {
							if p.Code == code {
								return countIn(gr.Populations[pi].Members, su.Units)
							}
						}
						return 0
					}
					// A stratifier limited to some populations has no score.
					if len(g.Stratifiers[si].AppliesTo) == 0 {
						if s, ok := measure.Score(g, c, func(i int) []float64 { return obsValues(gr.Populations[i].Observations, su.Units) }); ok {
							stratum.MeasureScore = &Quantity{Value: s}
						}
					}
					st.Stratum = append(st.Stratum, stratum)
				}
				out.Stratifier = append(out.Stratifier, st)
			}
		}
		rep.Group = append(rep.Group, out)
		// Episode-based groups name the episodes each population counted,
		// tagged with the population (DEQM criteriaReference).
		if gr != nil && g.IsEpisodeBased() {
			for pi, p := range g.Populations {
				if pi >= len(gr.Populations) {
					break
				}
				for _, u := range gr.Populations[pi].Members {
					ref := p.ID
					if ref == "" {
						ref = p.Code
					}
					rep.EvaluatedResource = append(rep.EvaluatedResource, Reference{Reference: u,
						Extension: []Extension{{URL: ExtCriteriaReference, ValueString: ref}}})
				}
			}
		}
	}
	for _, sde := range r.SDE {
		for vi, v := range sde.Values {
			id := fmt.Sprintf("%s-%d", sde.ID, vi+1)
			val := v.Concept
			rep.Contained = append(rep.Contained, Observation{
				ResourceType: "Observation", ID: id, Status: "final",
				Code:                 sdeCode(def, sde.ID),
				Subject:              rep.Subject,
				ValueCodeableConcept: &val,
			})
			rep.Extension = append(rep.Extension, sdeExtension(id, sde.ID))
		}
	}
	return rep
}

func sdeCode(def *measure.Definition, id string) measure.Concept {
	for _, s := range def.SupplementalData {
		if s.ID == id {
			if !s.Code.IsZero() {
				return *s.Code
			}
			return measure.Concept{Text: s.ID}
		}
	}
	return measure.Concept{Text: id}
}

func sdeExtension(containedID, sdeID string) Extension {
	return Extension{URL: ExtSupplementalData, ValueReference: &Reference{
		Reference: "#" + containedID,
		Extension: []Extension{{URL: ExtCriteriaReference, ValueString: sdeID}},
	}}
}

// countIn counts members that are in units.
func countIn(members, units []string) int {
	n := 0
	for _, m := range members {
		for _, u := range units {
			if m == u {
				n++
				break
			}
		}
	}
	return n
}

// obsValues returns observation values, restricted to units when units is non-nil.
func obsValues(obs []measure.Observation, units []string) []float64 {
	out := make([]float64, 0, len(obs))
	for _, o := range obs {
		if units != nil && countIn([]string{o.Unit}, units) == 0 {
			continue
		}
		out = append(out, o.Value)
	}
	return out
}

// Aggregator accumulates patients into a summary or subject-list report.
// It is not safe for concurrent use: feed it from one goroutine (the
// evaluator does).
type Aggregator struct {
	def      *measure.Definition
	opts     Options
	subjects bool // keep subject lists (subject-list report)
	groups   []groupAcc
	sde      []sdeAcc
	patients int
	errors   int
}

type popAcc struct {
	count    int
	obs      []float64
	subjects []string
}

type groupAcc struct {
	pops  []popAcc
	strat []stratAcc
}

type stratAcc struct {
	strata map[string]*stratumAcc
}

type stratumAcc struct {
	value measure.StratumValue
	pops  []popAcc
}

type sdeAcc struct {
	id     string
	counts map[string]*sdeCount
}

type sdeCount struct {
	value measure.Value
	n     int
}

// NewSummary returns an aggregator for a summary report.
func NewSummary(def *measure.Definition, opts Options) *Aggregator {
	return newAggregator(def, opts, false)
}

// NewSubjectList returns an aggregator for a subject-list report.
func NewSubjectList(def *measure.Definition, opts Options) *Aggregator {
	return newAggregator(def, opts, true)
}

func newAggregator(def *measure.Definition, opts Options, subjects bool) *Aggregator {
	a := &Aggregator{def: def, opts: opts, subjects: subjects}
	for _, g := range def.Groups {
		ga := groupAcc{pops: make([]popAcc, len(g.Populations)), strat: make([]stratAcc, len(g.Stratifiers))}
		for i := range ga.strat {
			ga.strat[i].strata = map[string]*stratumAcc{}
		}
		a.groups = append(a.groups, ga)
	}
	for _, s := range def.SupplementalData {
		a.sde = append(a.sde, sdeAcc{id: s.ID, counts: map[string]*sdeCount{}})
	}
	return a
}

// Patients returns how many patients were added, and how many of them failed.
func (a *Aggregator) Patients() (total, failed int) { return a.patients, a.errors }

// Add accumulates one patient.
func (a *Aggregator) Add(r *measure.PatientResult) {
	a.patients++
	if r.Err != nil {
		a.errors++
		return
	}
	for gi := range a.groups {
		if gi >= len(r.Groups) {
			break
		}
		g, gr, ga := &a.def.Groups[gi], &r.Groups[gi], &a.groups[gi]
		for pi := range ga.pops {
			if pi >= len(gr.Populations) {
				break
			}
			pr := &gr.Populations[pi]
			addPop(&ga.pops[pi], pr, nil, r.PatientID, a.subjects)
		}
		for si := range ga.strat {
			if si >= len(gr.Stratifiers) {
				break
			}
			for _, su := range gr.Stratifiers[si].Strata {
				sa := ga.strat[si].strata[su.Value.Key]
				if sa == nil {
					sa = &stratumAcc{value: su.Value, pops: make([]popAcc, len(g.Populations))}
					ga.strat[si].strata[su.Value.Key] = sa
				}
				for pi := range sa.pops {
					if pi < len(gr.Populations) {
						addPop(&sa.pops[pi], &gr.Populations[pi], su.Units, r.PatientID, a.subjects)
					}
				}
			}
		}
	}
	for _, s := range r.SDE {
		for i := range a.sde {
			if a.sde[i].id != s.ID {
				continue
			}
			for _, v := range s.Values {
				c := a.sde[i].counts[v.Key]
				if c == nil {
					c = &sdeCount{value: v}
					a.sde[i].counts[v.Key] = c
				}
				c.n++
			}
		}
	}
}

func addPop(pa *popAcc, pr *measure.PopulationResult, units []string, patient string, subjects bool) {
	n := pr.Count()
	if units != nil {
		n = countIn(pr.Members, units)
	}
	if n == 0 {
		return
	}
	pa.count += n
	if pr.Code == measure.MeasureObservation {
		pa.obs = append(pa.obs, obsValues(pr.Observations, units)...)
	}
	if subjects {
		pa.subjects = append(pa.subjects, patient)
	}
}

// Report returns the summary or subject-list MeasureReport of what was added.
func (a *Aggregator) Report() *MeasureReport {
	typ, profile := TypeSummary, ProfileSummary
	if a.subjects {
		typ, profile = TypeSubjectList, ProfileSubjectList
	}
	rep := header(a.def, a.opts, typ, profile)
	if a.errors > 0 {
		// Patients the engine could not evaluate are counted nowhere; the
		// report says how many (their ids are in the evaluator's log).
		rep.Extension = append(rep.Extension, Extension{URL: ExtEvaluationError,
			ValueString: fmt.Sprintf("%d of %d patients could not be evaluated and are not counted", a.errors, a.patients)})
	}
	listN := 0
	list := func(title string, subjects []string) *Reference {
		listN++
		id := fmt.Sprintf("list-%d", listN)
		sort.Strings(subjects)
		l := List{ResourceType: "List", ID: id, Status: "current", Mode: "snapshot", Title: title}
		for _, s := range subjects {
			ref := "Patient/" + s
			if a.opts.SubjectItem != nil {
				ref = a.opts.SubjectItem(s)
			}
			l.Entry = append(l.Entry, ListEntry{Item: Reference{Reference: ref}})
		}
		if len(l.Entry) == 0 {
			l.EmptyReason = emptyNilKnown
		}
		rep.Contained = append(rep.Contained, l)
		return &Reference{Reference: "#" + id}
	}
	pops := func(g *measure.Group, accs []popAcc, where string, strat *measure.Stratifier) ([]Population, func(string) int, func(int) []float64) {
		out := make([]Population, 0, len(accs))
		for pi, p := range g.Populations {
			if strat != nil && !applies(strat, p.Code) {
				continue
			}
			pop := Population{ID: p.ID, Code: populationCode(p.Code), Count: accs[pi].count}
			if a.subjects {
				pop.SubjectResults = list(where+" "+p.Code, accs[pi].subjects)
			}
			out = append(out, pop)
		}
		count := func(code string) int {
			for pi, p := range g.Populations {
				if p.Code == code {
					return accs[pi].count
				}
			}
			return 0
		}
		return out, count, func(i int) []float64 { return accs[i].obs }
	}
	for gi := range a.def.Groups {
		g, ga := &a.def.Groups[gi], &a.groups[gi]
		out := groupHeader(a.def, g)
		where := fmt.Sprintf("group %d", gi+1)
		var count func(string) int
		var obs func(int) []float64
		out.Population, count, obs = pops(g, ga.pops, where, nil)
		if s, ok := measure.Score(g, count, obs); ok {
			out.MeasureScore = &Quantity{Value: s}
		}
		for si := range g.Stratifiers {
			st := Stratifier{ID: g.Stratifiers[si].ID, Code: stratifierCode(&g.Stratifiers[si])}
			keys := make([]string, 0, len(ga.strat[si].strata))
			for k := range ga.strat[si].strata {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				sa := ga.strat[si].strata[k]
				sv, comps := stratumFields(sa.value)
				stratum := Stratum{Value: sv, Component: comps}
				var c func(string) int
				var o func(int) []float64
				stratum.Population, c, o = pops(g, sa.pops, fmt.Sprintf("%s stratifier %d stratum %s", where, si+1, k), &g.Stratifiers[si])
				if len(g.Stratifiers[si].AppliesTo) == 0 {
					if s, ok := measure.Score(g, c, o); ok {
						stratum.MeasureScore = &Quantity{Value: s}
					}
				}
				st.Stratum = append(st.Stratum, stratum)
			}
			out.Stratifier = append(out.Stratifier, st)
		}
		rep.Group = append(rep.Group, out)
	}
	for _, s := range a.sde {
		keys := make([]string, 0, len(s.counts))
		for k := range s.counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			c := s.counts[k]
			id := fmt.Sprintf("%s-%d", s.id, i+1)
			n := c.n
			rep.Contained = append(rep.Contained, Observation{
				ResourceType: "Observation", ID: id, Status: "final",
				Extension: []Extension{{URL: ExtMeasureInfo, Extension: []Extension{
					{URL: "measure", ValueCanonical: a.def.Canonical()},
					{URL: "populationId", ValueString: s.id},
				}}},
				Code:         c.value.Concept,
				ValueInteger: &n,
			})
			rep.Extension = append(rep.Extension, sdeExtension(id, s.id))
		}
	}
	return rep
}

// NewID returns a random (version 4 UUID) resource id, the kind reports get.
func NewID() string { return newID() }
