package elm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"

	"github.com/equitas/equitas/measures/elm/cql"
	"github.com/equitas/equitas/measures/elm/fhirmodel"
)

// ErrUnsupported is returned (wrapped) by Compile for ELM the engine does not
// implement.
var ErrUnsupported = errors.New("elm: unsupported ELM")

// CompileError locates a compilation failure.
type CompileError struct {
	Library  LibraryIdentifier
	Locator  string
	NodeType string
	Err      error
}

func (e *CompileError) Error() string {
	loc := ""
	if e.Locator != "" {
		loc = " at " + e.Locator
	}
	nt := ""
	if e.NodeType != "" {
		nt = " (" + e.NodeType + ")"
	}
	return fmt.Sprintf("elm: compile %s%s%s: %v", e.Library, loc, nt, e.Err)
}

func (e *CompileError) Unwrap() error { return e.Err }

const (
	nsSystem = "urn:hl7-org:elm-types:r1"
	nsFHIR   = "http://hl7.org/fhir"
)

type clib struct {
	id       LibraryIdentifier
	lib      *Library
	includes map[string]*clib
	exprs    map[string]*exprDef
	order    []*exprDef
	funcs    map[string][]*funcDef
	params   map[string]*paramDef
	csys     map[string]cql.CodeSystem
	vsets    map[string]*vsDef
	codes    map[string]node
	concepts map[string]node
	codeVals map[string]cql.Code
}

type exprDef struct {
	name  string
	lib   *clib
	n     node
	slot  int
	fn    evalFn
	state uint8
}

type funcDef struct {
	name     string
	lib      *clib
	n        node
	operands []operandDef
	body     evalFn
	native   func(c *Context, args []cql.Value) cql.Value
	external bool
	state    uint8
}

const maxCallDepth = 512

type operandDef struct {
	name string
	typ  *typeSpec
	slot int
}

// invoke1 calls a one-operand function without allocating an argument slice.
func (f *funcDef) invoke1(c *Context, arg cql.Value) cql.Value {
	if f.native != nil {
		return f.native(c, []cql.Value{arg})
	}
	c.depth++
	if c.depth > maxCallDepth {
		c.fail(&EvalError{Library: f.lib.id, Locator: str(f.n, "locator"), Err: fmt.Errorf("function %s: call depth exceeds %d", f.name, maxCallDepth)})
	}
	slot := f.operands[0].slot
	saved := c.vars[slot]
	c.vars[slot] = arg
	v := f.body(c)
	c.vars[slot] = saved
	c.depth--
	return v
}

// fit scores how well args match f's operand types (higher is better, -1
// when some argument cannot be passed).
func (f *funcDef) fit(args []cql.Value) int {
	score := 0
	for i, op := range f.operands {
		s := op.typ.match(args[i])
		if s == 0 {
			return -1
		}
		score += s
	}
	return score
}

func (f *funcDef) invoke(c *Context, args []cql.Value) cql.Value {
	if f.native != nil {
		return f.native(c, args)
	}
	// CQL forbids recursion, but malformed ELM may still recurse.
	c.depth++
	if c.depth > maxCallDepth {
		c.fail(&EvalError{Library: f.lib.id, Locator: str(f.n, "locator"), Err: fmt.Errorf("function %s: call depth exceeds %d", f.name, maxCallDepth)})
	}

	var saved [4]cql.Value
	for i, op := range f.operands {
		if i < len(saved) {
			saved[i] = c.vars[op.slot]
		}
		c.vars[op.slot] = args[i]
	}
	v := f.body(c)
	for i, op := range f.operands {
		if i < len(saved) {
			c.vars[op.slot] = saved[i]
		}
	}
	c.depth--
	return v
}

type paramDef struct {
	name  string
	lib   *clib
	index int
	def   evalFn
	typ   *typeSpec
	n     node
	// root is the root library's same-named parameter, whose value an
	// included library inherits unless set explicitly.
	root *paramDef
}

type vsDef struct {
	vs  cql.ValueSet
	set CodeSet
}

type compiler struct {
	ctx   context.Context
	src   LibrarySource
	terms Terminology
	p     *Program
	libs  map[string]*clib
	retr  map[string]int
	// pending lists definitions referenced but not compiled yet.
	pendingExpr []*exprDef
	pendingFunc []*funcDef
}

// Compile loads root and its includes from libs, resolves terminology via
// terms and compiles every definition of root (and everything it references).
func Compile(ctx context.Context, root LibraryIdentifier, libs LibrarySource, terms Terminology, opts Options) (*Program, error) {
	cp := &compiler{ctx: ctx, src: libs, terms: terms, libs: map[string]*clib{}, retr: map[string]int{},
		p: &Program{opts: opts, terms: terms, model: fhirmodel.R4()}}
	rl, err := cp.load(root)
	if err != nil {
		return nil, err
	}
	cp.p.root = rl
	for _, d := range rl.order {
		cp.pendingExpr = append(cp.pendingExpr, d)
	}
	for _, fs := range rl.funcs {
		for _, f := range fs {
			if !f.external {
				cp.pendingFunc = append(cp.pendingFunc, f)
			}
		}
	}
	for len(cp.pendingExpr) > 0 || len(cp.pendingFunc) > 0 {
		if n := len(cp.pendingExpr); n > 0 {
			d := cp.pendingExpr[n-1]
			cp.pendingExpr = cp.pendingExpr[:n-1]
			if err := cp.compileExpr(d); err != nil {
				return nil, err
			}
			continue
		}
		n := len(cp.pendingFunc)
		f := cp.pendingFunc[n-1]
		cp.pendingFunc = cp.pendingFunc[:n-1]
		if err := cp.compileFunc(f); err != nil {
			return nil, err
		}
	}
	for _, l := range cp.p.libs {
		for _, pd := range l.params {
			if l != rl {
				pd.root = rl.params[pd.name]
			}
			if pd.def == nil && pd.n["default"] != nil {
				fn, err := cp.expr(l, pd.n["default"], nil)
				if err != nil {
					return nil, err
				}
				pd.def = fn
			}
		}
	}
	return cp.p, nil
}

func (cp *compiler) load(id LibraryIdentifier) (*clib, error) {
	key := id.Name + "|" + id.Version
	if l, ok := cp.libs[key]; ok {
		return l, nil
	}
	lib, err := cp.src.Library(cp.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("elm: load %s: %w", id, err)
	}
	l := &clib{id: lib.ID, lib: lib, includes: map[string]*clib{}, exprs: map[string]*exprDef{},
		funcs: map[string][]*funcDef{}, params: map[string]*paramDef{}, csys: map[string]cql.CodeSystem{},
		vsets: map[string]*vsDef{}, codes: map[string]node{}, concepts: map[string]node{}, codeVals: map[string]cql.Code{}}
	cp.libs[key] = l
	cp.p.libs = append(cp.p.libs, l)
	r := lib.root
	for _, u := range defs(r, "usings") {
		uri, _ := u["uri"].(string)
		if uri != nsSystem && uri != nsFHIR {
			return nil, &CompileError{Library: l.id, Err: fmt.Errorf("%w: data model %q", ErrUnsupported, uri)}
		}
	}
	for _, inc := range defs(r, "includes") {
		name, _ := inc["path"].(string)
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		ver, _ := inc["version"].(string)
		alias, _ := inc["localIdentifier"].(string)
		il, err := cp.load(LibraryIdentifier{Name: name, Version: ver})
		if err != nil {
			return nil, err
		}
		l.includes[alias] = il
	}
	for _, cs := range defs(r, "codeSystems") {
		name, _ := cs["name"].(string)
		id, _ := cs["id"].(string)
		ver, _ := cs["version"].(string)
		l.csys[name] = cql.CodeSystem{ID: id, Version: ver, Name: name}
	}
	for _, vs := range defs(r, "valueSets") {
		name, _ := vs["name"].(string)
		id, _ := vs["id"].(string)
		ver, _ := vs["version"].(string)
		if cs, ok := vs["codeSystem"].([]any); ok && len(cs) > 0 {
			return nil, &CompileError{Library: l.id, Locator: str(vs, "locator"), Err: fmt.Errorf("%w: value set %q with codesystem filter", ErrUnsupported, name)}
		}
		var set CodeSet
		if cp.terms != nil {
			set, err = cp.terms.ValueSet(cp.ctx, id, ver)
		} else {
			err = fmt.Errorf("%w: no terminology", ErrValueSetNotFound)
		}
		if err != nil {
			if !cp.p.opts.AllowMissingValueSets {
				return nil, &CompileError{Library: l.id, Locator: str(vs, "locator"), Err: fmt.Errorf("value set %q (%s): %w", name, id, err)}
			}
			set = emptySet{}
		}
		l.vsets[name] = &vsDef{vs: cql.ValueSet{ID: id, Version: ver, Name: name}, set: set}
	}
	for _, c := range defs(r, "codes") {
		name, _ := c["name"].(string)
		l.codes[name] = c
	}
	for _, c := range defs(r, "concepts") {
		name, _ := c["name"].(string)
		l.concepts[name] = c
	}
	for _, pn := range defs(r, "parameters") {
		name, _ := pn["name"].(string)
		pd := &paramDef{name: name, lib: l, index: len(cp.p.params), n: pn}
		cp.p.params = append(cp.p.params, pd)
		l.params[name] = pd
	}
	for _, s := range defs(r, "statements") {
		name, _ := s["name"].(string)
		if t, _ := s["type"].(string); t == "FunctionDef" {
			f := &funcDef{name: name, lib: l, n: s}
			f.external, _ = s["external"].(bool)
			ops, _ := s["operand"].([]any)
			for _, o := range ops {
				om, _ := o.(map[string]any)
				on, _ := om["name"].(string)
				ts, err := cp.typeSpec(l, om["operandTypeSpecifier"], om["operandType"])
				if err != nil {
					return nil, cp.errAt(l, s, err)
				}
				f.operands = append(f.operands, operandDef{name: on, typ: ts, slot: cp.newVar()})
			}
			l.funcs[name] = append(l.funcs[name], f)
			continue
		}
		d := &exprDef{name: name, lib: l, n: s, slot: cp.p.nmemo}
		cp.p.nmemo++
		l.exprs[name] = d
		l.order = append(l.order, d)
	}
	return l, nil
}

func (cp *compiler) newVar() int {
	cp.p.nvars++
	return cp.p.nvars - 1
}

func (cp *compiler) newMemo() int {
	cp.p.nmemo++
	return cp.p.nmemo - 1
}

func (cp *compiler) compileExpr(d *exprDef) error {
	if d.state != 0 {
		return nil
	}
	d.state = 1
	fn, err := cp.expr(d.lib, d.n["expression"], nil)
	if err != nil {
		return err
	}
	d.fn = fn
	d.state = 2
	return nil
}

func (cp *compiler) compileFunc(f *funcDef) error {
	if f.state != 0 {
		return nil
	}
	f.state = 1
	if f.external {
		nat := nativeFunc(f.lib.id.Name, f.name, len(f.operands))
		if nat == nil {
			return &CompileError{Library: f.lib.id, Locator: str(f.n, "locator"), NodeType: "FunctionDef",
				Err: fmt.Errorf("%w: external function %s/%d", ErrUnsupported, f.name, len(f.operands))}
		}
		f.native = nat
		f.state = 2
		return nil
	}
	sc := &scope{}
	for _, op := range f.operands {
		var ft *fhirmodel.Type
		if op.typ != nil {
			t := op.typ
			if t.kind == 'l' {
				t = t.elem
			}
			if t != nil && t.fhir {
				ft = t.ftype
			}
		}
		sc = sc.withType(op.name, op.slot, ft)
	}
	fn, err := cp.expr(f.lib, f.n["expression"], sc)
	if err != nil {
		return err
	}
	f.body = fn
	f.state = 2
	return nil
}

// scope maps identifiers (aliases, lets, operands) to variable slots.
type scope struct {
	parent *scope
	name   string
	slot   int
	// ftype is the identifier's FHIR type (the element type for lists)
	// when known statically; it only feeds compile warnings.
	ftype *fhirmodel.Type
}

func (s *scope) with(name string, slot int) *scope {
	return &scope{parent: s, name: name, slot: slot}
}

func (s *scope) withType(name string, slot int, t *fhirmodel.Type) *scope {
	return &scope{parent: s, name: name, slot: slot, ftype: t}
}

func (s *scope) typeOf(name string) *fhirmodel.Type {
	for x := s; x != nil; x = x.parent {
		if x.name == name {
			return x.ftype
		}
	}
	return nil
}

func (s *scope) lookup(name string) (int, bool) {
	for x := s; x != nil; x = x.parent {
		if x.name == name {
			return x.slot, true
		}
	}
	return 0, false
}

func str(n node, k string) string {
	s, _ := n[k].(string)
	return s
}

func (cp *compiler) errAt(l *clib, n node, err error) error {
	return &CompileError{Library: l.id, Locator: str(n, "locator"), NodeType: str(n, "type"), Err: err}
}

func (cp *compiler) unsupported(l *clib, n node, what string) error {
	if what == "" {
		what = "node type " + str(n, "type")
	}
	return cp.errAt(l, n, fmt.Errorf("%w: %s", ErrUnsupported, what))
}

func (cp *compiler) lib(l *clib, n node) (*clib, error) {
	ln := str(n, "libraryName")
	if ln == "" {
		return l, nil
	}
	il := l.includes[ln]
	if il == nil {
		return nil, cp.errAt(l, n, fmt.Errorf("unknown library alias %q", ln))
	}
	return il, nil
}

func operands(n node) []node {
	switch o := n["operand"].(type) {
	case []any:
		out := make([]node, 0, len(o))
		for _, e := range o {
			m, _ := e.(map[string]any)
			out = append(out, m)
		}
		return out
	case map[string]any:
		return []node{o}
	}
	return nil
}

func (cp *compiler) exprs(l *clib, ns []node, sc *scope) ([]evalFn, error) {
	out := make([]evalFn, len(ns))
	for i, n := range ns {
		fn, err := cp.expr(l, n, sc)
		if err != nil {
			return nil, err
		}
		out[i] = fn
	}
	return out, nil
}

// optExpr compiles the optional child n[key]; an absent child compiles to a
// nil evalFn, which callers read as "argument not given" (distinct from an
// expression that evaluates to null).
func (cp *compiler) optExpr(l *clib, n node, key string, sc *scope) (evalFn, error) {
	if n[key] == nil {
		return nil, nil
	}
	return cp.expr(l, n[key], sc)
}

func (cp *compiler) opFns(l *clib, n node, sc *scope, want int) ([]evalFn, error) {
	ops := operands(n)
	if want >= 0 && len(ops) != want {
		return nil, cp.errAt(l, n, fmt.Errorf("%w: want %d operands, have %d", ErrInvalidELM, want, len(ops)))
	}
	return cp.exprs(l, ops, sc)
}

func precisionOf(n node) cql.Precision {
	p, _ := cql.ParsePrecision(str(n, "precision"))
	return p
}

// expr compiles one ELM expression node.
func (cp *compiler) expr(l *clib, raw any, sc *scope) (evalFn, error) {
	n, ok := raw.(map[string]any)
	if !ok || n == nil {
		return nil, &CompileError{Library: l.id, Err: fmt.Errorf("%w: expected expression object", ErrInvalidELM)}
	}
	t := str(n, "type")
	nops := len(operands(n))
	if t == "Negate" && nops == 1 {
		if op := operands(n)[0]; str(op, "type") == "Literal" {
			// Fold so that -2147483648 and the minimum Long are representable.
			vt := strings.TrimPrefix(str(op, "valueType"), "{"+nsSystem+"}")
			if vs, ok := op["value"].(string); ok && (vt == "Integer" || vt == "Long") {
				i, err := strconv.ParseInt("-"+strings.TrimSuffix(vs, "L"), 10, 64)
				if err != nil || (vt == "Integer" && i < math.MinInt32) {
					return nil, cp.errAt(l, op, fmt.Errorf("%w: %s literal -%s out of range", ErrInvalidELM, vt, vs))
				}
				var v cql.Value = cql.Long(i)
				if vt == "Integer" {
					v = cql.Integer(i)
				}
				return func(*Context) cql.Value { return v }, nil
			}
		}
	}
	if t == "Length" && nops == 1 {
		if op := operands(n)[0]; str(op, "type") == "As" {
			if ts, _ := op["asTypeSpecifier"].(map[string]any); str(ts, "type") == "ListTypeSpecifier" {
				inner, err := cp.expr(l, op, sc)
				if err != nil {
					return nil, err
				}
				return func(c *Context) cql.Value {
					v := inner(c)
					if v == nil {
						return cql.Integer(0)
					}
					return cql.Length(v)
				}, nil
			}
		}
	}
	if f, ok := unaryOps[t]; ok && (nops == 1 || binaryOps[t] == nil) {
		ops, err := cp.opFns(l, n, sc, 1)
		if err != nil {
			return nil, err
		}
		a := ops[0]
		return func(c *Context) cql.Value { return f(a(c)) }, nil
	}
	if f, ok := binaryOps[t]; ok && (nops == 2 || unaryOps[t] == nil) {
		ops, err := cp.opFns(l, n, sc, 2)
		if err != nil {
			return nil, err
		}
		a, b := ops[0], ops[1]
		return func(c *Context) cql.Value { return f(a(c), b(c)) }, nil
	}
	if f, ok := precisionOps[t]; ok && nops > 2 && (t == "Union" || t == "Intersect" || t == "Except") {
		// n-ary set operators fold left.
		ops, err := cp.opFns(l, n, sc, -1)
		if err != nil {
			return nil, err
		}
		return func(c *Context) cql.Value {
			acc := ops[0](c)
			for _, o := range ops[1:] {
				acc = f(acc, o(c), cql.PrecisionNone)
			}
			return acc
		}, nil
	}
	if f, ok := precisionOps[t]; ok {
		ops, err := cp.opFns(l, n, sc, 2)
		if err != nil {
			return nil, err
		}
		a, b := ops[0], ops[1]
		p := precisionOf(n)
		return func(c *Context) cql.Value { return f(a(c), b(c), p) }, nil
	}
	if f, ok := naryOps[t]; ok {
		ops, err := cp.opFns(l, n, sc, -1)
		if err != nil {
			return nil, err
		}
		return func(c *Context) cql.Value {
			args := make([]cql.Value, len(ops))
			for i, o := range ops {
				args[i] = o(c)
			}
			return f(args)
		}, nil
	}
	if f, ok := sourceOps[t]; ok {
		src, err := cp.expr(l, n["source"], sc)
		if err != nil {
			return nil, err
		}
		return func(c *Context) cql.Value { return f(src(c)) }, nil
	}
	switch t {
	case "Null":
		return func(*Context) cql.Value { return nil }, nil
	case "Literal":
		v, err := literal(n)
		if err != nil {
			return nil, cp.errAt(l, n, err)
		}
		return func(*Context) cql.Value { return v }, nil
	case "And", "Or":
		ops, err := cp.opFns(l, n, sc, 2)
		if err != nil {
			return nil, err
		}
		a, b := ops[0], ops[1]
		if t == "And" {
			return func(c *Context) cql.Value {
				x := a(c)
				if xb, ok := x.(cql.Boolean); ok && !bool(xb) {
					return cql.Boolean(false)
				}
				return cql.And(x, b(c))
			}, nil
		}
		return func(c *Context) cql.Value {
			x := a(c)
			if xb, ok := x.(cql.Boolean); ok && bool(xb) {
				return cql.Boolean(true)
			}
			return cql.Or(x, b(c))
		}, nil
	case "ExpressionRef":
		tl, err := cp.lib(l, n)
		if err != nil {
			return nil, err
		}
		name := str(n, "name")
		d := tl.exprs[name]
		if d == nil {
			return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown definition %q in %s", ErrInvalidELM, name, tl.id))
		}
		if d.state == 0 {
			cp.pendingExpr = append(cp.pendingExpr, d)
		}
		return func(c *Context) cql.Value { return c.evalDef(d) }, nil
	case "FunctionRef":
		return cp.functionRef(l, n, sc)
	case "ParameterRef":
		tl, err := cp.lib(l, n)
		if err != nil {
			return nil, err
		}
		pd := tl.params[str(n, "name")]
		if pd == nil {
			return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown parameter %q", ErrInvalidELM, str(n, "name")))
		}
		return func(c *Context) cql.Value { return c.param(pd) }, nil
	case "OperandRef", "AliasRef", "QueryLetRef":
		name := str(n, "name")
		slot, ok := sc.lookup(name)
		if !ok {
			return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown identifier %q", ErrInvalidELM, name))
		}
		return func(c *Context) cql.Value { return c.vars[slot] }, nil
	case "IdentifierRef":
		name := str(n, "name")
		if slot, ok := sc.lookup(name); ok {
			return func(c *Context) cql.Value { return c.vars[slot] }, nil
		}
		slot, ok := sc.lookup("$this")
		if !ok {
			return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown identifier %q", ErrInvalidELM, name))
		}
		return func(c *Context) cql.Value { return c.property(c.vars[slot], name) }, nil
	case "Property":
		return cp.property(l, n, sc)
	case "ValueSetRef":
		tl, err := cp.lib(l, n)
		if err != nil {
			return nil, err
		}
		vd := tl.vsets[str(n, "name")]
		if vd == nil {
			return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown value set %q", ErrInvalidELM, str(n, "name")))
		}
		v := vd.vs
		return func(*Context) cql.Value { return v }, nil
	case "CodeSystemRef":
		tl, err := cp.lib(l, n)
		if err != nil {
			return nil, err
		}
		cs, ok := tl.csys[str(n, "name")]
		if !ok {
			return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown code system %q", ErrInvalidELM, str(n, "name")))
		}
		return func(*Context) cql.Value { return cs }, nil
	case "CodeRef":
		tl, err := cp.lib(l, n)
		if err != nil {
			return nil, err
		}
		code, err := cp.codeRef(tl, str(n, "name"))
		if err != nil {
			return nil, cp.errAt(l, n, err)
		}
		return func(*Context) cql.Value { return code }, nil
	case "ConceptRef":
		tl, err := cp.lib(l, n)
		if err != nil {
			return nil, err
		}
		cn := tl.concepts[str(n, "name")]
		if cn == nil {
			return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown concept %q", ErrInvalidELM, str(n, "name")))
		}
		con := &cql.Concept{Display: str(cn, "display")}
		refs, _ := cn["code"].([]any)
		for _, r := range refs {
			rm, _ := r.(map[string]any)
			rl, err := cp.lib(tl, rm)
			if err != nil {
				return nil, err
			}
			code, err := cp.codeRef(rl, str(rm, "name"))
			if err != nil {
				return nil, cp.errAt(l, n, err)
			}
			con.Codes = append(con.Codes, code)
		}
		return func(*Context) cql.Value { return con }, nil
	case "Code":
		sysn, _ := n["system"].(map[string]any)
		tl, err := cp.lib(l, sysn)
		if err != nil {
			return nil, err
		}
		cs, ok := tl.csys[str(sysn, "name")]
		if !ok {
			return nil, cp.errAt(l, n, fmt.Errorf("%w: unknown code system %q", ErrInvalidELM, str(sysn, "name")))
		}
		code := cql.Code{Code: str(n, "code"), System: cs.ID, Version: cs.Version, Display: str(n, "display")}
		return func(*Context) cql.Value { return code }, nil
	case "Concept":
		codes, _ := n["code"].([]any)
		var fns []evalFn
		for _, cn := range codes {
			cm, _ := cn.(map[string]any)
			if str(cm, "type") == "" {
				// Copy rather than fill in: the parsed library is shared by
				// every compile of it, possibly concurrent ones.
				cm = maps.Clone(cm)
				cm["type"] = "Code"
			}
			fn, err := cp.expr(l, cm, sc)
			if err != nil {
				return nil, err
			}
			fns = append(fns, fn)
		}
		disp := str(n, "display")
		return func(c *Context) cql.Value {
			con := &cql.Concept{Display: disp}
			for _, f := range fns {
				if code, ok := f(c).(cql.Code); ok {
					con.Codes = append(con.Codes, code)
				}
			}
			return con
		}, nil
	case "Quantity":
		v, err := numberField(n, "value")
		if err != nil {
			return nil, cp.errAt(l, n, err)
		}
		q := cql.Quantity{Value: v, Unit: unitOr1(str(n, "unit"))}
		return func(*Context) cql.Value { return q }, nil
	case "Ratio":
		nq, _ := n["numerator"].(map[string]any)
		dq, _ := n["denominator"].(map[string]any)
		nv, err1 := numberField(nq, "value")
		dv, err2 := numberField(dq, "value")
		if err := errors.Join(err1, err2); err != nil {
			return nil, cp.errAt(l, n, err)
		}
		r := cql.Ratio{Numerator: cql.Quantity{Value: nv, Unit: unitOr1(str(nq, "unit"))}, Denominator: cql.Quantity{Value: dv, Unit: unitOr1(str(dq, "unit"))}}
		return func(*Context) cql.Value { return r }, nil
	case "Interval":
		return cp.interval(l, n, sc)
	case "List":
		els, _ := n["element"].([]any)
		fns := make([]evalFn, len(els))
		for i, e := range els {
			fn, err := cp.expr(l, e, sc)
			if err != nil {
				return nil, err
			}
			fns[i] = fn
		}
		return func(c *Context) cql.Value {
			out := make(cql.List, len(fns))
			for i, f := range fns {
				out[i] = f(c)
			}
			return out
		}, nil
	case "Tuple":
		els, _ := n["element"].([]any)
		names := make([]string, len(els))
		fns := make([]evalFn, len(els))
		for i, e := range els {
			em, _ := e.(map[string]any)
			names[i] = str(em, "name")
			fn, err := cp.expr(l, em["value"], sc)
			if err != nil {
				return nil, err
			}
			fns[i] = fn
		}
		return func(c *Context) cql.Value {
			vals := make([]cql.Value, len(fns))
			for i, f := range fns {
				vals[i] = f(c)
			}
			return &cql.Tuple{Names: names, Values: vals}
		}, nil
	case "Instance":
		return cp.instance(l, n, sc)
	case "If":
		cond, err := cp.expr(l, n["condition"], sc)
		if err != nil {
			return nil, err
		}
		th, err := cp.expr(l, n["then"], sc)
		if err != nil {
			return nil, err
		}
		el, err := cp.expr(l, n["else"], sc)
		if err != nil {
			return nil, err
		}
		return func(c *Context) cql.Value {
			if b, ok := cond(c).(cql.Boolean); ok && bool(b) {
				return th(c)
			}
			return el(c)
		}, nil
	case "Case":
		return cp.caseExpr(l, n, sc)
	case "Coalesce":
		ops, err := cp.opFns(l, n, sc, -1)
		if err != nil {
			return nil, err
		}
		single := len(ops) == 1
		return func(c *Context) cql.Value {
			if single {
				// Coalesce(list): first non-null element.
				if lst, ok := ops[0](c).(cql.List); ok {
					for _, v := range lst {
						if v != nil {
							return v
						}
					}
				}
				return nil
			}
			for _, o := range ops {
				if v := o(c); v != nil {
					return v
				}
			}
			return nil
		}, nil
	case "Is":
		ops, err := cp.opFns(l, n, sc, 1)
		if err != nil {
			return nil, err
		}
		ts, err := cp.typeSpec(l, n["isTypeSpecifier"], n["isType"])
		if err != nil {
			return nil, cp.errAt(l, n, err)
		}
		a := ops[0]
		return func(c *Context) cql.Value {
			v := a(c)
			if v == nil {
				return cql.Boolean(false)
			}
			return cql.Boolean(ts.match(v) > 0)
		}, nil
	case "As":
		ops, err := cp.opFns(l, n, sc, 1)
		if err != nil {
			return nil, err
		}
		ts, err := cp.typeSpec(l, n["asTypeSpecifier"], n["asType"])
		if err != nil {
			return nil, cp.errAt(l, n, err)
		}
		strict, _ := n["strict"].(bool)
		a := ops[0]
		return func(c *Context) cql.Value {
			v := a(c)
			if v == nil || ts.match(v) > 0 {
				return v
			}
			if strict {
				c.fail(&EvalError{Library: l.id, Locator: str(n, "locator"), Err: fmt.Errorf("cannot cast %s to %s", cql.TypeName(v), ts)})
			}
			return nil
		}, nil
	case "Message":
		return cp.message(l, n, sc)
	case "Query":
		return cp.query(l, n, sc)
	case "Retrieve":
		return cp.retrieve(l, n, sc)
	case "InValueSet", "AnyInValueSet":
		return cp.inValueSet(l, n, sc)
	case "InCodeSystem", "AnyInCodeSystem":
		return cp.inCodeSystem(l, n, sc)
	case "ExpandValueSet":
		ops, err := cp.opFns(l, n, sc, 1)
		if err != nil {
			return nil, err
		}
		return cp.expandValueSet(l, n, ops[0])
	case "DateTime", "Date", "Time":
		return cp.dateCtor(l, n, sc, t)
	case "Now":
		return func(c *Context) cql.Value { return c.now }, nil
	case "Today":
		return func(c *Context) cql.Value {
			return cql.Date{Year: c.now.Year, Month: c.now.Month, Day: c.now.Day, Precision: cql.Day}
		}, nil
	case "TimeOfDay":
		return func(c *Context) cql.Value {
			return cql.Time{Hour: c.now.Hour, Minute: c.now.Minute, Second: c.now.Second, Millisecond: c.now.Millisecond, Precision: cql.Millisecond}
		}, nil
	case "CalculateAge":
		ops, err := cp.opFns(l, n, sc, 1)
		if err != nil {
			return nil, err
		}
		p := precisionOf(n)
		a := ops[0]
		return func(c *Context) cql.Value {
			var today cql.Value = c.now
			if _, ok := a(c).(cql.Date); ok {
				today = cql.Date{Year: c.now.Year, Month: c.now.Month, Day: c.now.Day, Precision: cql.Day}
			}
			return cql.CalculateAgeAt(a(c), today, p)
		}, nil
	case "CalculateAgeAt":
		ops, err := cp.opFns(l, n, sc, 2)
		if err != nil {
			return nil, err
		}
		p := precisionOf(n)
		a, b := ops[0], ops[1]
		return func(c *Context) cql.Value { return cql.CalculateAgeAt(a(c), b(c), p) }, nil
	case "DateTimeComponentFrom":
		ops, err := cp.opFns(l, n, sc, 1)
		if err != nil {
			return nil, err
		}
		p := precisionOf(n)
		a := ops[0]
		return func(c *Context) cql.Value { return cql.ComponentFrom(a(c), p) }, nil
	case "Round":
		a, err := cp.expr(l, n["operand"], sc)
		if err != nil {
			return nil, err
		}
		prec, err := cp.optExpr(l, n, "precision", sc)
		if err != nil {
			return nil, err
		}
		return func(c *Context) cql.Value {
			var p cql.Value
			if prec != nil {
				p = prec(c)
			}
			return cql.Round(a(c), p)
		}, nil
	case "MinValue", "MaxValue":
		ts, err := cp.typeSpec(l, nil, n["valueType"])
		if err != nil {
			return nil, cp.errAt(l, n, err)
		}
		v, err := cql.MinMaxValue(ts.name, t == "MaxValue")
		if err != nil {
			return nil, cp.errAt(l, n, err)
		}
		return func(*Context) cql.Value { return v }, nil
	case "Split", "SplitOnMatches", "IndexOf", "PositionOf", "LastPositionOf":
		op := namedBinaryOps[t]
		a, err := cp.expr(l, n[op.a], sc)
		if err != nil {
			return nil, err
		}
		b, err := cp.expr(l, n[op.b], sc)
		if err != nil {
			return nil, err
		}
		return func(c *Context) cql.Value { return op.f(a(c), b(c)) }, nil
	case "Combine":
		src, err := cp.expr(l, n["source"], sc)
		if err != nil {
			return nil, err
		}
		sep, err := cp.optExpr(l, n, "separator", sc)
		if err != nil {
			return nil, err
		}
		return func(c *Context) cql.Value {
			var s cql.Value = cql.String("")
			if sep != nil {
				s = sep(c)
			}
			return cql.Combine(src(c), s)
		}, nil
	case "Substring":
		s, err := cp.expr(l, n["stringToSub"], sc)
		if err != nil {
			return nil, err
		}
		start, err := cp.expr(l, n["startIndex"], sc)
		if err != nil {
			return nil, err
		}
		ln, err := cp.optExpr(l, n, "length", sc)
		if err != nil {
			return nil, err
		}
		return func(c *Context) cql.Value {
			if ln == nil {
				return cql.Substring(s(c), start(c), nil, false)
			}
			return cql.Substring(s(c), start(c), ln(c), true)
		}, nil
	case "First", "Last":
		src, err := cp.expr(l, n["source"], sc)
		if err != nil {
			return nil, err
		}
		last := t == "Last"
		return func(c *Context) cql.Value {
			lst, _ := src(c).(cql.List)
			if len(lst) == 0 {
				return nil
			}
			if last {
				return lst[len(lst)-1]
			}
			return lst[0]
		}, nil
	case "Slice":
		src, err := cp.expr(l, n["source"], sc)
		if err != nil {
			return nil, err
		}
		start, err := cp.expr(l, n["startIndex"], sc)
		if err != nil {
			return nil, err
		}
		end, err := cp.optExpr(l, n, "endIndex", sc)
		if err != nil {
			return nil, err
		}
		return func(c *Context) cql.Value {
			var e cql.Value
			if end != nil {
				e = end(c)
			}
			return cql.Slice(src(c), start(c), e)
		}, nil
	case "Sort":
		return cp.sortExpr(l, n, sc)
	case "ForEach", "Filter", "Repeat":
		return cp.iteration(l, n, sc, t)
	case "Current", "Iteration":
		slot, ok := sc.lookup("$this")
		if !ok {
			return nil, cp.unsupported(l, n, "Current outside an iteration")
		}
		return func(c *Context) cql.Value { return c.vars[slot] }, nil
	case "Total":
		slot, ok := sc.lookup("$total")
		if !ok {
			return nil, cp.unsupported(l, n, "Total outside an aggregate")
		}
		return func(c *Context) cql.Value { return c.vars[slot] }, nil
	case "Children", "Descendents":
		src, err := cp.expr(l, n["source"], sc)
		if err != nil {
			return nil, err
		}
		deep := t == "Descendents"
		return func(c *Context) cql.Value { return cql.Children(src(c), deep) }, nil
	case "CanConvert":
		ops, err := cp.opFns(l, n, sc, 1)
		if err != nil {
			return nil, err
		}
		ts, err := cp.typeSpec(l, n["toTypeSpecifier"], n["toType"])
		if err != nil {
			return nil, cp.errAt(l, n, err)
		}
		f := cql.ConverterTo(ts.name)
		if f == nil {
			return nil, cp.unsupported(l, n, "CanConvert to "+ts.String())
		}
		a := ops[0]
		return func(c *Context) cql.Value {
			v := a(c)
			if v == nil {
				return nil
			}
			return cql.Boolean(f(v) != nil)
		}, nil
	case "Exists":
		ops, err := cp.opFns(l, n, sc, 1)
		if err != nil {
			return nil, err
		}
		a := ops[0]
		return func(c *Context) cql.Value {
			lst, _ := a(c).(cql.List)
			for _, v := range lst {
				if v != nil {
					return cql.Boolean(true)
				}
			}
			return cql.Boolean(false)
		}, nil
	case "Convert":
		ops, err := cp.opFns(l, n, sc, 1)
		if err != nil {
			return nil, err
		}
		ts, err := cp.typeSpec(l, n["toTypeSpecifier"], n["toType"])
		if err != nil {
			return nil, cp.errAt(l, n, err)
		}
		f := cql.ConverterTo(ts.name)
		if f == nil {
			return nil, cp.unsupported(l, n, "Convert to "+ts.String())
		}
		a := ops[0]
		return func(c *Context) cql.Value { return f(a(c)) }, nil
	}
	return nil, cp.unsupported(l, n, "")
}

func unitOr1(u string) string {
	if u == "" {
		return "1"
	}
	return u
}

func (c *Context) param(pd *paramDef) cql.Value {
	if c.pset[pd.index] {
		return c.params[pd.index]
	}
	if pd.root != nil {
		v := c.param(pd.root)
		c.params[pd.index], c.pset[pd.index] = v, true
		return v
	}
	if pd.def == nil {
		return nil
	}
	v := pd.def(c)
	c.params[pd.index], c.pset[pd.index] = v, true
	return v
}

func (cp *compiler) codeRef(l *clib, name string) (cql.Code, error) {
	if c, ok := l.codeVals[name]; ok {
		return c, nil
	}
	cn := l.codes[name]
	if cn == nil {
		return cql.Code{}, fmt.Errorf("%w: unknown code %q", ErrInvalidELM, name)
	}
	code := cql.Code{Code: str(cn, "id"), Display: str(cn, "display")}
	if csn, ok := cn["codeSystem"].(map[string]any); ok {
		cl, err := cp.lib(l, csn)
		if err != nil {
			return cql.Code{}, err
		}
		cs, ok := cl.csys[str(csn, "name")]
		if !ok {
			return cql.Code{}, fmt.Errorf("%w: unknown code system %q", ErrInvalidELM, str(csn, "name"))
		}
		code.System, code.Version = cs.ID, cs.Version
	}
	l.codeVals[name] = code
	return code, nil
}

func numberField(n node, k string) (float64, error) {
	switch v := n[k].(type) {
	case json.Number:
		return v.Float64()
	case float64:
		return v, nil
	case string:
		return strconv.ParseFloat(v, 64)
	case nil:
		return 0, nil
	}
	return 0, fmt.Errorf("%w: %s is not a number", ErrInvalidELM, k)
}

func literal(n node) (cql.Value, error) {
	vt := str(n, "valueType")
	var s string
	switch v := n["value"].(type) {
	case string:
		s = v
	case json.Number:
		s = v.String()
	case bool:
		s = strconv.FormatBool(v)
	case nil:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: literal value", ErrInvalidELM)
	}
	name := strings.TrimPrefix(vt, "{"+nsSystem+"}")
	switch name {
	case "Boolean":
		b, err := strconv.ParseBool(s)
		return cql.Boolean(b), err
	case "Integer":
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: integer literal %q", ErrInvalidELM, s)
		}
		if i > math.MaxInt32 || i < math.MinInt32 {
			// Only 2^31 is legal, as the operand of Negate, which folds it.
			return nil, fmt.Errorf("%w: integer literal %q out of range", ErrInvalidELM, s)
		}
		return cql.Integer(i), nil
	case "Long":
		s = strings.TrimSuffix(s, "L")
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, nil
		}
		return cql.Long(i), nil
	case "Decimal":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: decimal literal %q", ErrInvalidELM, s)
		}
		if i := strings.IndexByte(s, '.'); i >= 0 && len(strings.TrimLeft(s[i+1:], "0123456789")) == 0 && len(s)-i-1 > 8 {
			return nil, fmt.Errorf("%w: decimal literal %q has more than 8 decimal places", ErrInvalidELM, s)
		}
		if intDigits := len(strings.TrimLeft(strings.SplitN(strings.TrimLeft(s, "+-"), ".", 2)[0], "0")); intDigits > 28 {
			return nil, fmt.Errorf("%w: decimal literal %q out of range", ErrInvalidELM, s)
		}
		return cql.Decimal(f), nil
	case "String":
		return cql.String(s), nil
	case "Date":
		return cql.ParseDate(s)
	case "DateTime":
		return cql.ParseDateTime(s)
	case "Time":
		return cql.ParseTime(s)
	}
	return nil, fmt.Errorf("%w: literal of type %q", ErrUnsupported, vt)
}
