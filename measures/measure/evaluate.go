package measure

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/elm/cql"
	"github.com/equitas/equitas/measures/patientsource"
)

// MeasurementPeriodParameter is the CQL parameter every eCQM declares.
const MeasurementPeriodParameter = "Measurement Period"

// Session evaluates patients one after another with one engine context.
// It is not safe for concurrent use; create one per goroutine.
type Session struct {
	m      *Measure
	ectx   *elm.Context
	params map[string]cql.Value
	units  map[string]*cql.FHIR
}

// NewSession returns a session evaluating m over period.
func (m *Measure) NewSession(period Period) *Session {
	params := map[string]cql.Value{}
	for _, p := range m.Program.Parameters() {
		if p == MeasurementPeriodParameter {
			params[p] = period.Interval()
		}
	}
	return &Session{m: m, ectx: m.Program.NewContext(), params: params, units: map[string]*cql.FHIR{}}
}

// Evaluate computes one patient's result. Evaluation failures (engine
// errors, even engine panics) are reported in PatientResult.Err so one bad
// record does not stop a population run.
func (s *Session) Evaluate(ctx context.Context, p *patientsource.Patient) (res *PatientResult) {
	res = &PatientResult{PatientID: p.ID}
	defer func() {
		if r := recover(); r != nil {
			res.Groups, res.SDE = nil, nil
			res.Err = fmt.Errorf("measure: engine panic for patient %s: %v\n%s", p.ID, r, debug.Stack())
		}
	}()
	if err := s.ectx.Reset(ctx, p, s.params); err != nil {
		res.Err = fmt.Errorf("patient %s: %w", p.ID, err)
		return res
	}
	inAnyIP := false
	for gi := range s.m.Def.Groups {
		gr, err := s.group(gi)
		if err != nil {
			res.Err = fmt.Errorf("patient %s: %w", p.ID, err)
			res.Groups = nil
			return res
		}
		if gr.Count(InitialPopulation) > 0 {
			inAnyIP = true
		}
		res.Groups = append(res.Groups, gr)
	}
	// Supplemental data describe the measure's patients; patients outside
	// every initial population contribute none.
	if inAnyIP {
		for i, sd := range s.m.Def.SupplementalData {
			v, err := s.eval(s.m.sde[i])
			if err != nil {
				res.Err = fmt.Errorf("patient %s: supplemental data %s: %w", p.ID, sd.ID, err)
				res.Groups, res.SDE = nil, nil
				return res
			}
			res.SDE = append(res.SDE, SDEResult{ID: sd.ID, Values: Values(v)})
		}
	}
	return res
}

func (s *Session) eval(c criterion, args ...cql.Value) (cql.Value, error) {
	if c.function {
		return s.ectx.Call(c.name, args...)
	}
	return s.ectx.EvalRef(c.ref)
}

// group evaluates one group. Populations are evaluated in dependency order
// and skipped when the rules would empty them anyway (nobody in the
// initial population needs no numerator), which is where most of a large
// population's time would go.
func (s *Session) group(gi int) (GroupResult, error) {
	g := &s.m.Def.Groups[gi]
	cg := &s.m.groups[gi]
	clear(s.units)
	raw := make([]RawPopulation, len(g.Populations))
	evaluated := make([]bool, len(g.Populations))
	evalPop := func(i int) error {
		if evaluated[i] {
			return nil
		}
		evaluated[i] = true
		v, err := s.eval(cg.pops[i])
		if err != nil {
			return fmt.Errorf("%s %q: %w", g.Populations[i].Code, g.Populations[i].Expression, err)
		}
		raw[i].Members, err = s.members(g, v)
		if err != nil {
			return fmt.Errorf("%s %q: %w", g.Populations[i].Code, g.Populations[i].Expression, err)
		}
		return nil
	}
	// Initial populations first: if all are empty nothing else can count.
	anyIP := false
	for i, p := range g.Populations {
		if p.Code == InitialPopulation {
			if err := evalPop(i); err != nil {
				return GroupResult{}, err
			}
			anyIP = anyIP || len(raw[i].Members) > 0
		}
	}
	if anyIP {
		for _, code := range evaluationOrder {
			for i, p := range g.Populations {
				if p.Code != code || evaluated[i] {
					continue
				}
				if needed(g, raw, evaluated, i) {
					if err := evalPop(i); err != nil {
						return GroupResult{}, err
					}
				}
			}
		}
		for i, p := range g.Populations {
			if p.Code != MeasureObservation {
				continue
			}
			for _, u := range ObservedUnits(g, raw, i) {
				var args []cql.Value
				if g.IsEpisodeBased() {
					args = []cql.Value{s.units[u]}
				}
				v, err := s.eval(cg.pops[i], args...)
				if err != nil {
					return GroupResult{}, fmt.Errorf("measure observation %q: %w", p.Expression, err)
				}
				if f, ok := number(v); ok {
					raw[i].Observations = append(raw[i].Observations, Observation{Unit: u, Value: f})
				}
			}
		}
	}
	gr := ApplyRules(g, raw)
	if len(g.Stratifiers) == 0 || !anyIP {
		return gr, nil
	}
	var units []string
	for i, p := range gr.Populations {
		if p.Code == InitialPopulation {
			units = append(units, gr.Populations[i].Members...)
		}
	}
	units = newUnitSet(units).members()
	for si := range g.Stratifiers {
		sr, err := s.stratify(g, &g.Stratifiers[si], &cg.strat[si], units)
		if err != nil {
			return GroupResult{}, err
		}
		gr.Stratifiers = append(gr.Stratifiers, sr)
	}
	return gr, nil
}

// evaluationOrder lists population codes so each comes after those it
// depends on.
var evaluationOrder = []string{Denominator, MeasurePopulation, DenominatorExclusion, MeasurePopulationExclusion, Numerator, NumeratorExclusion, DenominatorException}

// needed reports whether population i can still change the result given
// what has been evaluated (populations not evaluated are empty). It is
// conservative (any initial population stands for the one a population is
// drawn from), so it may evaluate more than needed but never less, and it
// does not allocate: it runs several times per patient.
func needed(g *Group, raw []RawPopulation, evaluated []bool, i int) bool {
	has := func(code, u string) bool {
		for j, p := range g.Populations {
			if p.Code == code && evaluated[j] {
				for _, m := range raw[j].Members {
					if m == u {
						return true
					}
				}
			}
		}
		return false
	}
	// exists reports whether some unit of population code (within an
	// initial population) satisfies keep.
	exists := func(code string, keep func(u string) bool) bool {
		for j, p := range g.Populations {
			if p.Code != code || !evaluated[j] {
				continue
			}
			for _, u := range raw[j].Members {
				if has(InitialPopulation, u) && keep(u) {
					return true
				}
			}
		}
		return false
	}
	all := func(string) bool { return true }
	switch g.Populations[i].Code {
	case DenominatorExclusion:
		return exists(Denominator, all)
	case MeasurePopulationExclusion:
		return exists(MeasurePopulation, all)
	case Numerator:
		if g.Scoring == Ratio {
			return true
		}
		return exists(Denominator, func(u string) bool { return !has(DenominatorExclusion, u) })
	case NumeratorExclusion:
		if g.Scoring == Ratio {
			return exists(Numerator, all)
		}
		return exists(Numerator, func(u string) bool { return has(Denominator, u) && !has(DenominatorExclusion, u) })
	case DenominatorException:
		return exists(Denominator, func(u string) bool { return !has(DenominatorExclusion, u) && !has(Numerator, u) })
	}
	return true
}

// members converts a population criterion value to unit keys.
func (s *Session) members(g *Group, v cql.Value) ([]string, error) {
	if !g.IsEpisodeBased() {
		switch b := v.(type) {
		case nil:
			return nil, nil
		case cql.Boolean:
			if b {
				return []string{PatientUnit}, nil
			}
			return nil, nil
		default:
			return nil, fmt.Errorf("population basis is boolean but the expression returned %T", v)
		}
	}
	var items cql.List
	switch x := v.(type) {
	case nil:
		return nil, nil
	case cql.List:
		items = x
	case *cql.FHIR:
		items = cql.List{x}
	default:
		return nil, fmt.Errorf("population basis is %s but the expression returned %T", g.Basis, v)
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		if it == nil {
			continue
		}
		f, ok := it.(*cql.FHIR)
		if !ok {
			return nil, fmt.Errorf("population basis is %s but element %d is %T", g.Basis, i, it)
		}
		key := unitKey(f, g.Basis, i)
		if _, seen := s.units[key]; !seen {
			s.units[key] = f
		}
		out = append(out, key)
	}
	return out, nil
}

func unitKey(f *cql.FHIR, basis string, i int) string {
	rt := f.ResourceType()
	if rt == "" {
		rt = basis
	}
	if id := f.ID(); id != "" {
		return rt + "/" + id
	}
	return fmt.Sprintf("%s/#%d", rt, i)
}

// stratify places units in strata. A stratifier expression is either a
// value per patient, a list of episodes (member → "true", others →
// "false"), or (episode basis) a function of the episode.
func (s *Session) stratify(g *Group, st *Stratifier, cs *compiledStratifier, units []string) (StratifierResult, error) {
	// perUnit[u] holds each criterion's values for unit u.
	perUnit := make([][][]Value, len(units))
	for ci, c := range cs.criteria {
		var whole cql.Value
		if !c.function {
			v, err := s.eval(c)
			if err != nil {
				return StratifierResult{}, fmt.Errorf("stratifier %q: %w", c.name, err)
			}
			whole = v
		}
		membership, isMembership := episodeList(g, whole)
		for ui, u := range units {
			if perUnit[ui] == nil {
				perUnit[ui] = make([][]Value, len(cs.criteria))
			}
			var vals []Value
			switch {
			case c.function:
				v, err := s.eval(c, s.units[u])
				if err != nil {
					return StratifierResult{}, fmt.Errorf("stratifier %q: %w", c.name, err)
				}
				vals = Values(v)
			case isMembership:
				vals = []Value{boolValue(membership[u])}
			default:
				vals = Values(whole)
			}
			if len(vals) == 0 {
				vals = []Value{nullValue}
			}
			perUnit[ui][ci] = vals
		}
	}
	var res StratifierResult
	add := func(sv StratumValue, u string) {
		for i := range res.Strata {
			if res.Strata[i].Value.Key == sv.Key {
				res.Strata[i].Units = append(res.Strata[i].Units, u)
				return
			}
		}
		res.Strata = append(res.Strata, StratumUnits{Value: sv, Units: []string{u}})
	}
	for ui, u := range units {
		if len(st.Components) == 0 {
			for _, v := range perUnit[ui][0] {
				v := v
				add(StratumValue{Key: v.Key, Value: &v}, u)
			}
			continue
		}
		// Components: one stratum per combination of the first value of
		// each component (components are single-valued by definition).
		sv := StratumValue{}
		for ci, vals := range perUnit[ui] {
			sv.Components = append(sv.Components, ComponentValue{Code: st.Components[ci].Code, Value: vals[0]})
			sv.Key += vals[0].Key + "\x1f"
		}
		add(sv, u)
	}
	return res, nil
}

// episodeList reads a stratifier value as a set of episodes when the group
// is episode-based and the value is a list of resources.
func episodeList(g *Group, v cql.Value) (map[string]bool, bool) {
	if !g.IsEpisodeBased() {
		return nil, false
	}
	l, ok := v.(cql.List)
	if !ok {
		return nil, false
	}
	out := map[string]bool{}
	for i, it := range l {
		f, ok := it.(*cql.FHIR)
		if !ok || f.ResourceType() == "" {
			return nil, false
		}
		out[unitKey(f, g.Basis, i)] = true
	}
	return out, true
}

// Stats summarises a population run.
type Stats struct {
	Patients int
	Failed   int
}

// RunOptions tune Run.
type RunOptions struct {
	Period Period
	// Workers is the number of parallel evaluators; 0 means GOMAXPROCS.
	Workers int
}

// Run evaluates every patient of src in parallel and calls sink with each
// result in source order, from the calling goroutine. Each worker owns a
// Session (its own engine context and caches). Patients in flight are
// bounded, so memory does not grow with the population.
func (m *Measure) Run(ctx context.Context, src patientsource.Source, opts RunOptions, sink func(*PatientResult) error) (Stats, error) {
	var st Stats
	err := patientsource.Parallel(ctx, src, opts.Workers, func() func(context.Context, *patientsource.Patient) *PatientResult {
		return m.NewSession(opts.Period).Evaluate
	}, func(r *PatientResult) error {
		st.Patients++
		if r.Err != nil {
			st.Failed++
		}
		return sink(r)
	})
	return st, err
}
