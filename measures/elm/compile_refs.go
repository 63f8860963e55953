package elm

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/equitas/equitas/measures/elm/cql"
	"github.com/equitas/equitas/measures/elm/fhirmodel"
)

// typeSpec is a compiled ELM type specifier.
type typeSpec struct {
	kind    byte // 'n' named, 'l' list, 'i' interval, 'c' choice, 't' tuple
	name    string
	fhir    bool
	known   bool // FHIR type known to the model
	ftype   *fhirmodel.Type
	elem    *typeSpec
	choices []*typeSpec
}

func (t *typeSpec) String() string {
	if t == nil {
		return "Any"
	}
	switch t.kind {
	case 'l':
		return "List<" + t.elem.String() + ">"
	case 'i':
		return "Interval<" + t.elem.String() + ">"
	case 'c':
		var s []string
		for _, c := range t.choices {
			s = append(s, c.String())
		}
		return "Choice<" + strings.Join(s, ",") + ">"
	case 't':
		return "Tuple"
	}
	if t.fhir {
		return "FHIR." + t.name
	}
	return t.name
}

func (cp *compiler) typeSpec(l *clib, spec any, name any) (*typeSpec, error) {
	if s, ok := name.(string); ok && s != "" {
		return cp.namedType(s)
	}
	m, ok := spec.(map[string]any)
	if !ok {
		return nil, nil
	}
	kind := str(m, "type")
	if _, ok := m["choice"]; ok {
		// Some translator versions serialise ChoiceTypeSpecifier's "type" as [].
		kind = "ChoiceTypeSpecifier"
	}
	switch kind {
	case "NamedTypeSpecifier":
		return cp.namedType(str(m, "name"))
	case "ListTypeSpecifier":
		e, err := cp.typeSpec(l, m["elementType"], nil)
		if err != nil {
			return nil, err
		}
		return &typeSpec{kind: 'l', elem: e}, nil
	case "IntervalTypeSpecifier":
		e, err := cp.typeSpec(l, m["pointType"], nil)
		if err != nil {
			return nil, err
		}
		return &typeSpec{kind: 'i', elem: e}, nil
	case "ChoiceTypeSpecifier":
		t := &typeSpec{kind: 'c'}
		chs, _ := m["choice"].([]any)
		if len(chs) == 0 {
			chs, _ = m["type"].([]any)
		}
		for _, c := range chs {
			ct, err := cp.typeSpec(l, c, nil)
			if err != nil {
				return nil, err
			}
			t.choices = append(t.choices, ct)
		}
		return t, nil
	case "TupleTypeSpecifier":
		return &typeSpec{kind: 't'}, nil
	}
	return nil, fmt.Errorf("%w: type specifier %q", ErrUnsupported, str(m, "type"))
}

func (cp *compiler) namedType(q string) (*typeSpec, error) {
	switch {
	case strings.HasPrefix(q, "{"+nsSystem+"}"):
		return &typeSpec{kind: 'n', name: strings.TrimPrefix(q, "{"+nsSystem+"}")}, nil
	case strings.HasPrefix(q, "{"+nsFHIR+"}"):
		n := strings.TrimPrefix(q, "{"+nsFHIR+"}")
		ft := cp.p.model.Type(n)
		return &typeSpec{kind: 'n', name: n, fhir: true, ftype: ft, known: ft != nil}, nil
	case strings.HasPrefix(q, "System."):
		return &typeSpec{kind: 'n', name: strings.TrimPrefix(q, "System.")}, nil
	case strings.HasPrefix(q, "FHIR."):
		n := strings.TrimPrefix(q, "FHIR.")
		ft := cp.p.model.Type(n)
		return &typeSpec{kind: 'n', name: n, fhir: true, ftype: ft, known: ft != nil}, nil
	}
	return nil, fmt.Errorf("%w: type %q", ErrUnsupported, q)
}

// match scores how well v fits t: 0 no match, 1 loose (unknown FHIR binding
// type vs a code), 2 subtype, 3 exact.
func (t *typeSpec) match(v cql.Value) int {
	if t == nil {
		return 2
	}
	if v == nil {
		return 1
	}
	switch t.kind {
	case 'l':
		lst, ok := v.(cql.List)
		if !ok {
			return 0
		}
		for _, e := range lst {
			if e != nil && t.elem.match(e) == 0 {
				return 0
			}
		}
		return 3
	case 'i':
		iv, ok := v.(*cql.Interval)
		if !ok {
			return 0
		}
		for _, p := range []cql.Value{iv.Low, iv.High} {
			if p != nil && t.elem.match(p) == 0 {
				return 0
			}
		}
		return 3
	case 'c':
		best := 0
		for _, c := range t.choices {
			if s := c.match(v); s > best {
				best = s
			}
		}
		return best
	case 't':
		_, ok := v.(*cql.Tuple)
		if ok {
			return 3
		}
		return 0
	}
	if t.fhir {
		f, ok := v.(*cql.FHIR)
		if !ok {
			return 0
		}
		if f.Type == nil {
			return 1
		}
		if !t.known {
			// Bindings such as FHIR.EncounterStatus are profiled codes.
			if f.Type.IsA("code") || f.Type.IsA("string") {
				return 1
			}
			return 0
		}
		if f.Type == t.ftype {
			return 3
		}
		if f.Type.IsA(t.name) {
			return 2
		}
		return 0
	}
	return cql.IsSystemType(v, t.name)
}

func (cp *compiler) functionRef(l *clib, n node, sc *scope) (evalFn, error) {
	tl, err := cp.lib(l, n)
	if err != nil {
		return nil, err
	}
	name := str(n, "name")
	args, err := cp.opFns(l, n, sc, -1)
	if err != nil {
		return nil, err
	}
	var cands []*funcDef
	for _, f := range tl.funcs[name] {
		if len(f.operands) == len(args) {
			cands = append(cands, f)
		}
	}
	if len(cands) == 0 {
		if nat := systemFunc(name, len(args)); nat != nil {
			return func(c *Context) cql.Value {
				vals := make([]cql.Value, len(args))
				for i, a := range args {
					vals[i] = a(c)
				}
				return nat(c, vals)
			}, nil
		}
		return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown function %s.%s/%d", ErrInvalidELM, tl.id.Name, name, len(args)))
	}
	// Narrow by declared signature when the translator recorded one.
	if sig, ok := n["signature"].([]any); ok && len(sig) == len(args) && len(cands) > 1 {
		var sts []*typeSpec
		for _, s := range sig {
			st, err := cp.typeSpec(l, s, nil)
			if err != nil {
				return nil, cp.errAt(l, n, err)
			}
			sts = append(sts, st)
		}
		var exact []*funcDef
		for _, f := range cands {
			same := true
			for i, op := range f.operands {
				if op.typ.String() != sts[i].String() {
					same = false
				}
			}
			if same {
				exact = append(exact, f)
			}
		}
		if len(exact) > 0 {
			cands = exact
		}
	}
	for _, f := range cands {
		if f.state == 0 {
			if f.external {
				if err := cp.compileFunc(f); err != nil {
					return nil, err
				}
			} else {
				cp.pendingFunc = append(cp.pendingFunc, f)
			}
		}
	}
	evalArgs := func(c *Context) []cql.Value {
		vals := make([]cql.Value, len(args))
		for i, a := range args {
			vals[i] = a(c)
		}
		return vals
	}
	if len(cands) == 1 {
		f := cands[0]
		if len(args) == 1 {
			a := args[0]
			return func(c *Context) cql.Value { return f.invoke1(c, a(c)) }, nil
		}
		return func(c *Context) cql.Value { return f.invoke(c, evalArgs(c)) }, nil
	}
	// Runtime dispatch on argument types, cached per call site.
	var cache sync.Map
	return func(c *Context) cql.Value {
		vals := evalArgs(c)
		key := dispatchKey(vals)
		var f *funcDef
		if cached, ok := cache.Load(key); ok {
			f = cached.(*funcDef)
		} else {
			best := -1
			for _, cand := range cands {
				if score := cand.fit(vals); score > best {
					best, f = score, cand
				}
			}
			if best < 0 {
				c.fail(&EvalError{Library: l.id, Locator: str(n, "locator"), Err: fmt.Errorf("no overload of %s matches argument types", name)})
			}
			cache.Store(key, f)
		}
		return f.invoke(c, vals)
	}, nil
}

type dispatchK struct {
	a, b, c any
}

func typeKey(v cql.Value) any {
	switch x := v.(type) {
	case nil:
		return nil
	case *cql.FHIR:
		if x.Type == nil {
			return "fhir?"
		}
		return x.Type
	case cql.List:
		if len(x) > 0 {
			return [2]any{"list", typeKey(x[0])}
		}
		return "list"
	case *cql.Interval:
		p := x.Low
		if p == nil {
			p = x.High
		}
		return [2]any{"interval", typeKey(p)}
	}
	return cql.TypeName(v)
}

func dispatchKey(vals []cql.Value) dispatchK {
	var k dispatchK
	if len(vals) > 0 {
		k.a = typeKey(vals[0])
	}
	if len(vals) > 1 {
		k.b = typeKey(vals[1])
	}
	if len(vals) > 2 {
		k.c = typeKey(vals[2])
	}
	return k
}

// staticType infers the FHIR type (element type for lists) of an
// expression where that is cheap: retrieves, typed identifiers and property
// paths on them. It reports property paths the FHIR model does not have
// as compile warnings, since at run time they can only yield null.
func (cp *compiler) staticType(l *clib, raw any, sc *scope) *fhirmodel.Type {
	n, _ := raw.(map[string]any)
	switch str(n, "type") {
	case "Retrieve":
		return cp.p.model.Type(strings.TrimPrefix(str(n, "dataType"), "{"+nsFHIR+"}"))
	case "AliasRef", "OperandRef", "QueryLetRef":
		return sc.typeOf(str(n, "name"))
	case "Union", "Intersect", "Except":
		var t *fhirmodel.Type
		for i, op := range operands(n) {
			ot := cp.staticType(l, op, sc)
			if i > 0 && ot != t {
				return nil
			}
			t = ot
		}
		return t
	case "Property":
		var src *fhirmodel.Type
		if s := str(n, "scope"); s != "" {
			src = sc.typeOf(s)
		} else {
			src = cp.staticType(l, n["source"], sc)
		}
		if src == nil {
			return nil
		}
		t := src
		for _, p := range strings.Split(str(n, "path"), ".") {
			if t.Primitive() {
				return nil
			}
			f := t.Field(p)
			if f == nil {
				w := fmt.Sprintf("%s %s: %s has no element %q; the property is always null", l.id, str(n, "locator"), t.Name, p)
				if !slices.Contains(cp.p.warnings, w) {
					cp.p.warnings = append(cp.p.warnings, w)
				}
				return nil
			}
			if f.Type == nil {
				return nil
			}
			t = f.Type
		}
		return t
	}
	return nil
}

func (cp *compiler) property(l *clib, n node, sc *scope) (evalFn, error) {
	path := str(n, "path")
	cp.staticType(l, n, sc)
	var src evalFn
	if s := str(n, "scope"); s != "" {
		slot, ok := sc.lookup(s)
		if !ok {
			return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown scope %q", ErrInvalidELM, s))
		}
		src = func(c *Context) cql.Value { return c.vars[slot] }
	} else {
		var err error
		if src, err = cp.expr(l, n["source"], sc); err != nil {
			return nil, err
		}
	}
	parts := strings.Split(path, ".")
	if len(parts) == 1 {
		pc := &propCache{}
		return func(c *Context) cql.Value {
			v := src(c)
			if f, ok := v.(*cql.FHIR); ok && f != nil && f.Type != nil && !f.Type.Primitive() {
				return cql.FHIRFieldProperty(&c.alloc, f, path, pc.field(f.Type, path))
			}
			return c.property(v, path)
		}, nil
	}
	return func(c *Context) cql.Value {
		v := src(c)
		for _, p := range parts {
			v = c.property(v, p)
		}
		return v
	}, nil
}

// propCache is a per-call-site monomorphic cache of the element resolved
// on the last FHIR type seen; the Program is shared, so it is atomic.
type propCache struct {
	last atomic.Pointer[propEntry]
}

type propEntry struct {
	t *fhirmodel.Type
	f *fhirmodel.Field
}

func (pc *propCache) field(t *fhirmodel.Type, name string) *fhirmodel.Field {
	if e := pc.last.Load(); e != nil && e.t == t {
		return e.f
	}
	f := t.Field(name)
	pc.last.Store(&propEntry{t: t, f: f})
	return f
}

// property navigates one path step on any value.
func (c *Context) property(v cql.Value, name string) cql.Value {
	switch x := v.(type) {
	case nil:
		return nil
	case *cql.FHIR:
		if x != nil && x.Type != nil && !x.Type.Primitive() {
			return cql.FHIRFieldProperty(&c.alloc, x, name, x.Type.Field(name))
		}
		return cql.FHIRProperty(x, name)
	case cql.List:
		var out cql.List
		for _, e := range x {
			switch r := c.property(e, name).(type) {
			case nil:
			case cql.List:
				out = append(out, r...)
			default:
				out = append(out, r)
			}
		}
		if out == nil {
			out = cql.List{}
		}
		return out
	}
	return cql.SystemProperty(v, name)
}

func (cp *compiler) retrieve(l *clib, n node, sc *scope) (evalFn, error) {
	dt := str(n, "dataType")
	if !strings.HasPrefix(dt, "{"+nsFHIR+"}") {
		return nil, cp.unsupported(l, n, "retrieve of "+dt)
	}
	typ := strings.TrimPrefix(dt, "{"+nsFHIR+"}")
	if ft := cp.p.model.Type(typ); ft == nil || !ft.Resource {
		return nil, cp.errAt(l, n, fmt.Errorf("%w: retrieve of unknown resource type %q", ErrInvalidELM, typ))
	}
	for _, k := range []string{"include", "codeFilter", "dateFilter", "otherFilter"} {
		if arr, ok := n[k].([]any); ok && len(arr) > 0 {
			return nil, cp.unsupported(l, n, "retrieve "+k)
		}
	}
	for _, k := range []string{"context", "idProperty", "idSearch", "codeSearch", "dateSearch", "dateLowProperty", "dateHighProperty"} {
		if n[k] != nil {
			return nil, cp.unsupported(l, n, "retrieve "+k)
		}
	}
	idx, ok := cp.retr[typ]
	if !ok {
		idx = len(cp.p.retrTypes)
		cp.p.retrTypes = append(cp.p.retrTypes, typ)
		cp.retr[typ] = idx
	}
	profile := str(n, "templateId")
	profFilter := cp.profileFilter(typ, profile)

	var codes evalFn
	var codeSet CodeSet
	codePath := str(n, "codeProperty")
	comparator := str(n, "codeComparator")
	if n["codes"] != nil {
		cn, _ := n["codes"].(map[string]any)
		if str(cn, "type") == "ValueSetRef" {
			tl, err := cp.lib(l, cn)
			if err != nil {
				return nil, err
			}
			vd := tl.vsets[str(cn, "name")]
			if vd == nil {
				return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown value set %q", ErrInvalidELM, str(cn, "name")))
			}
			codeSet = vd.set
		} else {
			var err error
			if codes, err = cp.expr(l, n["codes"], sc); err != nil {
				return nil, err
			}
		}
		if codePath == "" {
			return nil, cp.unsupported(l, n, "retrieve with codes but no codeProperty")
		}
		switch comparator {
		case "", "in", "~", "=":
		default:
			return nil, cp.unsupported(l, n, "retrieve codeComparator "+comparator)
		}
	}
	var dateRange evalFn
	datePath := str(n, "dateProperty")
	if n["dateRange"] != nil {
		var err error
		if dateRange, err = cp.expr(l, n["dateRange"], sc); err != nil {
			return nil, err
		}
		if datePath == "" {
			return nil, cp.unsupported(l, n, "retrieve dateRange without dateProperty")
		}
	}
	memo := -1
	if codes == nil && dateRange == nil {
		memo = cp.newMemo()
	}
	return func(c *Context) cql.Value {
		if memo >= 0 && c.state[memo] == 2 {
			return c.memo[memo]
		}
		all := c.resources(idx)
		var out cql.List
		var codeVal cql.Value
		if codes != nil {
			codeVal = codes(c)
		}
		var rng *cql.Interval
		if dateRange != nil {
			rng, _ = dateRange(c).(*cql.Interval)
		}
		for _, r := range all {
			if profFilter != nil && !profFilter(r) {
				continue
			}
			if codeSet != nil || codes != nil {
				pv := cql.FHIRFieldProperty(&c.alloc, r, codePath, r.Type.Field(codePath))
				if codeSet != nil {
					if !cql.AnyCodeIn(pv, codeSet.Contains) {
						continue
					}
				} else if vs, ok := codeVal.(cql.ValueSet); ok {
					if !cql.AnyCodeIn(pv, c.valueSet(vs).Contains) {
						continue
					}
				} else if !cql.CodesMatch(pv, codeVal, comparator == "=") {
					continue
				}
			}
			if dateRange != nil {
				if rng == nil {
					continue
				}
				pv := cql.ToCQLValue(cql.FHIRProperty(r, datePath))
				if !cql.DateInRange(pv, rng) {
					continue
				}
			}
			out = append(out, r)
		}
		if out == nil {
			out = cql.List{}
		}
		if memo >= 0 {
			c.memo[memo], c.state[memo] = out, 2
		}
		return out
	}, nil
}

// valueSet resolves a value set computed at run time: first among the
// program's compiled value sets, then through the terminology.
func (c *Context) valueSet(vs cql.ValueSet) CodeSet {
	for _, lb := range c.p.libs {
		for _, vd := range lb.vsets {
			if vd.vs.ID == vs.ID && (vs.Version == "" || vd.vs.Version == vs.Version) {
				return vd.set
			}
		}
	}
	if c.p.terms != nil {
		if set, err := c.p.terms.ValueSet(c.ctx, vs.ID, vs.Version); err == nil {
			return set
		} else if !c.p.opts.AllowMissingValueSets {
			c.fail(fmt.Errorf("elm: value set %s: %w", vs.ID, err))
		}
	}
	return emptySet{}
}

func (cp *compiler) inValueSet(l *clib, n node, sc *scope) (evalFn, error) {
	key := "code"
	if str(n, "type") == "AnyInValueSet" {
		key = "codes"
	}
	codeFn, err := cp.expr(l, n[key], sc)
	if err != nil {
		return nil, err
	}
	vn, _ := n["valueset"].(map[string]any)
	if vn == nil {
		if vx, ok := n["valuesetExpression"].(map[string]any); ok {
			vsFn, err := cp.expr(l, vx, sc)
			if err != nil {
				return nil, err
			}
			return func(c *Context) cql.Value {
				vs, ok := vsFn(c).(cql.ValueSet)
				if !ok {
					return nil
				}
				return cql.InCodeSet(codeFn(c), c.valueSet(vs).Contains)
			}, nil
		}
		return nil, cp.unsupported(l, n, "value set expression")
	}
	tl, err := cp.lib(l, vn)
	if err != nil {
		return nil, err
	}
	vd := tl.vsets[str(vn, "name")]
	if vd == nil {
		return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown value set %q", ErrInvalidELM, str(vn, "name")))
	}
	set := vd.set
	return func(c *Context) cql.Value { return cql.InCodeSet(codeFn(c), set.Contains) }, nil
}

func (cp *compiler) inCodeSystem(l *clib, n node, sc *scope) (evalFn, error) {
	key := "code"
	if str(n, "type") == "AnyInCodeSystem" {
		key = "codes"
	}
	codeFn, err := cp.expr(l, n[key], sc)
	if err != nil {
		return nil, err
	}
	csn, _ := n["codesystem"].(map[string]any)
	if csn == nil {
		return nil, cp.unsupported(l, n, "code system expression")
	}
	tl, err := cp.lib(l, csn)
	if err != nil {
		return nil, err
	}
	cs, ok := tl.csys[str(csn, "name")]
	if !ok {
		return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown code system %q", ErrInvalidELM, str(csn, "name")))
	}
	// Without code system content, membership is by system URL.
	contains := func(system, _ string) bool { return system == cs.ID }
	return func(c *Context) cql.Value { return cql.InCodeSet(codeFn(c), contains) }, nil
}

func (cp *compiler) expandValueSet(l *clib, n node, vsFn evalFn) (evalFn, error) {
	return func(c *Context) cql.Value {
		vs, ok := vsFn(c).(cql.ValueSet)
		if !ok {
			return nil
		}
		out := cql.List{}
		for _, code := range c.valueSet(vs).Codes() {
			out = append(out, code)
		}
		return out
	}, nil
}

// profileFilter returns the meta.profile test for a retrieve, or nil when
// every resource of the type qualifies.
func (cp *compiler) profileFilter(typ, profile string) func(*cql.FHIR) bool {
	if profile == "" || profile == "http://hl7.org/fhir/StructureDefinition/"+typ {
		return nil
	}
	switch cp.p.opts.Profiles {
	case ProfileIgnore:
		return nil
	case ProfileInfer:
		infer := inferProfile(typ, profile)
		return func(r *cql.FHIR) bool { return hasProfile(r, profile) || infer(r) }
	}
	return func(r *cql.FHIR) bool { return hasProfile(r, profile) }
}

func hasProfile(r *cql.FHIR, profile string) bool {
	meta := r.Node.Get("meta")
	ps := meta.Get("profile")
	if ps == nil {
		return false
	}
	for _, p := range ps.Vals {
		s := p.Str
		if i := strings.IndexByte(s, '|'); i >= 0 {
			s = s[:i]
		}
		if s == profile {
			return true
		}
	}
	return false
}

type emptySet struct{}

func (emptySet) Contains(string, string) bool { return false }
func (emptySet) Codes() []cql.Code            { return nil }
