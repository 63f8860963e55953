package caregaps

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/store"
)

// Compiler returns the compiled measure of a Measure reference ("Measure/id",
// an id, or a canonical url[|version]); measures/catalog.Catalog is one.
type Compiler interface {
	Measure(ctx context.Context, ref string) (*measure.Measure, error)
}

// Selected is one measure a request applies, compiled, with the
// improvementNotation each of its groups is judged by.
type Selected struct {
	ID, URL, Version, Title string
	// Def is the compiled definition with each group's notation replaced
	// by the resolved one, so reports and gaps agree.
	Def       *measure.Definition
	Measure   *measure.Measure
	Notations []Notation // per group
}

// Canonical is url|version.
func (s *Selected) Canonical() string { return s.Def.Canonical() }

// measureMeta is what selection reads of a stored Measure.
type measureMeta struct {
	id, url, version, title string
	identifiers, programs   []string // system|value, system|code
	topics                  []string // system|code
	raw                     []byte
}

func parseMeta(raw []byte) measureMeta {
	m := gjson.ParseBytes(raw)
	mm := measureMeta{id: m.Get("id").String(), url: m.Get("url").String(), version: m.Get("version").String(), raw: raw}
	mm.title = m.Get("title").String()
	if mm.title == "" {
		mm.title = m.Get("name").String()
	}
	m.Get("identifier").ForEach(func(_, i gjson.Result) bool {
		mm.identifiers = append(mm.identifiers, i.Get("system").String()+"|"+i.Get("value").String())
		return true
	})
	m.Get("useContext").ForEach(func(_, u gjson.Result) bool {
		if u.Get("code.code").String() != "program" {
			return true
		}
		u.Get("valueCodeableConcept.coding").ForEach(func(_, c gjson.Result) bool {
			mm.programs = append(mm.programs, c.Get("system").String()+"|"+c.Get("code").String())
			return true
		})
		return true
	})
	m.Get("topic").ForEach(func(_, t gjson.Result) bool {
		t.Get("coding").ForEach(func(_, c gjson.Result) bool {
			mm.topics = append(mm.topics, c.Get("system").String()+"|"+c.Get("code").String())
			return true
		})
		return true
	})
	return mm
}

// tokenMatch matches a FHIR token (system|code, |code, or code) against
// system|code values.
func tokenMatch(token string, values []string) bool {
	sys, code, hasSys := strings.Cut(token, "|")
	if !hasSys {
		code, sys = token, ""
	}
	for _, v := range values {
		vs, vc, _ := strings.Cut(v, "|")
		if vc != code {
			continue
		}
		if !hasSys || vs == sys {
			return true
		}
	}
	return false
}

func (mm *measureMeta) matchesURL(canonical string) bool {
	u, v, hasV := strings.Cut(canonical, "|")
	return u == mm.url && (!hasV || v == mm.version)
}

// SelectMeasures returns the proportion measures a request applies, in
// Measure id order: those named by measureId, measureIdentifier or
// measureUrl (each name must resolve: otherwise ErrNotFound), or every
// Measure in the store when none is named; program and topic then keep
// those in the program and on the topic. Measures that are not
// proportion-scored have no gaps: naming one is a ParamError, and they are
// skipped when all measures apply.
func (s *Service) SelectMeasures(ctx context.Context, req *Request) ([]*Selected, error) {
	var all []measureMeta
	err := s.st.Scan(ctx, "Measure", time.Time{}, func(r *store.Resource) error {
		all = append(all, parseMeta(r.Body))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("caregaps: listing measures: %w", err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	named := len(req.MeasureIDs)+len(req.MeasureIdentifiers)+len(req.MeasureURLs) > 0
	pick := make([]bool, len(all))
	if !named {
		for i := range pick {
			pick[i] = true
		}
	}
	mark := func(param, name string, match func(*measureMeta) bool) error {
		found := false
		for i := range all {
			if match(&all[i]) {
				pick[i], found = true, true
			}
		}
		if !found {
			return fmt.Errorf("%w: %s %q names no Measure on this server", ErrNotFound, param, name)
		}
		return nil
	}
	for _, id := range req.MeasureIDs {
		if err := mark("measureId", id, func(m *measureMeta) bool { return m.id == id }); err != nil {
			return nil, err
		}
	}
	for _, tok := range req.MeasureIdentifiers {
		if err := mark("measureIdentifier", tok, func(m *measureMeta) bool { return tokenMatch(tok, m.identifiers) }); err != nil {
			return nil, err
		}
	}
	for _, u := range req.MeasureURLs {
		if err := mark("measureUrl", u, func(m *measureMeta) bool { return m.matchesURL(u) }); err != nil {
			return nil, err
		}
	}
	var out []*Selected
	for i := range all {
		mm := &all[i]
		if !pick[i] || !anyToken(req.Programs, mm.programs) || !anyToken(req.Topics, mm.topics) {
			continue
		}
		m, err := s.compiler.Measure(ctx, "Measure/"+mm.id)
		if err != nil {
			if named {
				return nil, fmt.Errorf("caregaps: Measure/%s: %w", mm.id, err)
			}
			s.log.Warn("care-gaps: skipping a measure that does not compile", "measure", mm.id, "error", err)
			continue
		}
		sel := s.selected(mm, m)
		if sel == nil {
			if named {
				return nil, &ParamError{Param: "measure", Reason: fmt.Sprintf("Measure/%s has no proportion group: gaps in care are defined for proportion measures only", mm.id)}
			}
			continue
		}
		out = append(out, sel)
	}
	return out, nil
}

// anyToken reports whether tokens is empty or one of them matches values.
func anyToken(tokens, values []string) bool {
	if len(tokens) == 0 {
		return true
	}
	for _, t := range tokens {
		if tokenMatch(t, values) {
			return true
		}
	}
	return false
}

// selected resolves each group's notation; nil when no group is
// proportion-scored.
func (s *Service) selected(mm *measureMeta, m *measure.Measure) *Selected {
	def := *m.Def
	def.Groups = append([]measure.Group(nil), m.Def.Groups...)
	sel := &Selected{ID: mm.id, URL: def.URL, Version: def.Version, Title: mm.title, Def: &def, Measure: m}
	proportion := false
	for gi := range def.Groups {
		g := &def.Groups[gi]
		n := ResolveNotation(mm.raw, gi, s.opts.Notations)
		if n.Code == "" {
			n = Notation{Code: "increase", Source: "default"}
		}
		if _, seen := s.warned.LoadOrStore(fmt.Sprintf("%s#%d", def.Canonical(), gi), true); n.Conflict != "" && !seen {
			s.log.Warn("care-gaps: self-contradictory improvementNotation", "measure", mm.id, "group", gi, "conflict", n.Conflict, "using", n.Code, "source", n.Source)
		}
		g.ImprovementNotation = n.Code
		if g.Scoring == measure.Proportion {
			proportion = true
		}
		sel.Notations = append(sel.Notations, n)
	}
	// The report states the notation once at the root when every group
	// shares it, else on every group and not at the root (DEQM deqm-4:
	// exactly one of the two per group).
	def.ImprovementNotation = sel.Notations[0].Code
	for _, n := range sel.Notations {
		if n.Code != def.ImprovementNotation {
			def.ImprovementNotation = ""
		}
	}
	for gi := range def.Groups {
		def.Groups[gi].GroupLevelImprovementNotation = def.ImprovementNotation == ""
	}
	if !proportion {
		return nil
	}
	return sel
}
