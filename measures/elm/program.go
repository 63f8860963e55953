package elm

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/equitas/equitas/measures/elm/cql"
	"github.com/equitas/equitas/measures/elm/fhirmodel"
)

// evalFn is a compiled ELM expression.
type evalFn func(c *Context) cql.Value

// Program is a compiled root library with its includes. It is immutable
// after Compile and safe for concurrent use.
type Program struct {
	opts      Options
	terms     Terminology
	model     *fhirmodel.Model
	root      *clib
	libs      []*clib
	nmemo     int
	nvars     int
	retrTypes []string // resource type per retrieve-cache index
	params    []*paramDef
	warnings  []string
}

// Warnings lists compile-time findings that do not prevent evaluation, such
// as property paths that do not exist in the FHIR model.
func (p *Program) Warnings() []string { return p.warnings }

// DefRef is a pre-resolved handle on a root-library expression definition
// for fast repeated evaluation.
type DefRef struct {
	def *exprDef
}

// Valid reports whether the handle refers to a definition.
func (r DefRef) Valid() bool { return r.def != nil }

// Library returns the root library identifier.
func (p *Program) Library() LibraryIdentifier { return p.root.id }

// Definitions lists the root library's expression definitions in order.
func (p *Program) Definitions() []string {
	out := make([]string, 0, len(p.root.order))
	for _, d := range p.root.order {
		out = append(out, d.name)
	}
	return out
}

// Ref resolves a root-library expression definition by name.
func (p *Program) Ref(name string) (DefRef, bool) {
	d := p.root.exprs[name]
	return DefRef{def: d}, d != nil
}

// Parameters lists the root library's parameter names.
func (p *Program) Parameters() []string {
	var out []string
	for _, pd := range p.params {
		if pd.lib == p.root {
			out = append(out, pd.name)
		}
	}
	return out
}

// Context is the per-patient evaluation state: memoised definitions, query
// variables and parsed resources. Not safe for concurrent use; create one per
// goroutine and reuse it across patients.
type Context struct {
	p      *Program
	ctx    context.Context
	data   DataSource
	memo   []cql.Value
	state  []uint8
	vars   []cql.Value
	params []cql.Value
	pset   []bool
	res    [][]*cql.FHIR
	resOK  []bool
	now    cql.DateTime
	depth  int
	arena  fhirmodel.Arena
	alloc  cql.Alloc
	dyn    map[string][]*cql.FHIR
}

// NewContext returns an evaluation context for p.
func (p *Program) NewContext() *Context {
	return &Context{
		p:      p,
		memo:   make([]cql.Value, p.nmemo),
		state:  make([]uint8, p.nmemo),
		vars:   make([]cql.Value, p.nvars),
		params: make([]cql.Value, len(p.params)),
		pset:   make([]bool, len(p.params)),
		res:    make([][]*cql.FHIR, len(p.retrTypes)),
		resOK:  make([]bool, len(p.retrTypes)),
	}
}

// Reset prepares c for a new patient. Values returned for the previous
// patient must not be used after Reset (their parsed JSON is recycled);
// strings taken from them (ids, codes) remain valid. Parameters given by name (root library
// names, or "Library.Name" for included libraries) override defaults.
func (c *Context) Reset(ctx context.Context, data DataSource, params map[string]cql.Value) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c.ctx = ctx
	c.data = data
	clear(c.memo)
	clear(c.state)
	clear(c.vars)
	clear(c.params)
	clear(c.pset)
	clear(c.res)
	clear(c.resOK)
	c.depth = 0
	c.arena.Reset()
	c.alloc.Reset()
	clear(c.dyn)
	now := time.Now
	if c.p.opts.Now != nil {
		now = c.p.opts.Now
	}
	c.now = cql.FromTime(now().In(time.FixedZone("", c.p.opts.TimezoneOffset*60)))
	for name, v := range params {
		found := false
		for i, pd := range c.p.params {
			if (pd.lib == c.p.root && pd.name == name) || pd.lib.id.Name+"."+pd.name == name {
				c.params[i], c.pset[i] = v, true
				found = true
			}
		}
		if !found {
			return fmt.Errorf("elm: unknown parameter %q", name)
		}
	}
	return nil
}

// Evaluate resets c for the patient and evaluates every expression
// definition of the root library.
func (c *Context) Evaluate(ctx context.Context, data DataSource, params map[string]cql.Value) (*Results, error) {
	if err := c.Reset(ctx, data, params); err != nil {
		return nil, err
	}
	r := &Results{}
	for _, d := range c.p.root.order {
		v, err := c.EvalRef(DefRef{def: d})
		if err != nil {
			return nil, err
		}
		r.names = append(r.names, d.name)
		r.values = append(r.values, v)
	}
	return r, nil
}

// Eval evaluates a root-library definition by name for the current patient.
func (c *Context) Eval(name string) (cql.Value, error) {
	d := c.p.root.exprs[name]
	if d == nil {
		return nil, fmt.Errorf("elm: %s has no definition %q", c.p.root.id, name)
	}
	return c.EvalRef(DefRef{def: d})
}

// EvalRef evaluates a pre-resolved definition.
func (c *Context) EvalRef(r DefRef) (v cql.Value, err error) {
	if r.def == nil {
		return nil, errors.New("elm: invalid DefRef")
	}
	defer c.recoverErr(&err)
	return c.evalDef(r.def), nil
}

// Call invokes a root-library function (e.g. a measure observation function)
// with the given arguments.
func (c *Context) Call(name string, args ...cql.Value) (v cql.Value, err error) {
	// Pick the overload whose operand types fit the arguments best.
	var fd *funcDef
	best := -1
	for _, f := range c.p.root.funcs[name] {
		if len(f.operands) != len(args) || (f.body == nil && f.native == nil) {
			continue
		}
		if score := f.fit(args); score > best {
			best, fd = score, f
		}
	}
	if fd == nil {
		return nil, fmt.Errorf("elm: %s has no compiled function %s/%d", c.p.root.id, name, len(args))
	}
	defer c.recoverErr(&err)
	return fd.invoke(c, args), nil
}

// EvalError is a runtime error raised while evaluating ELM (a Message with
// severity Error, SingletonFrom on a list of many, a data source failure).
type EvalError struct {
	Library LibraryIdentifier
	Locator string
	Err     error
}

func (e *EvalError) Error() string {
	loc := ""
	if e.Locator != "" {
		loc = " at " + e.Locator
	}
	return fmt.Sprintf("elm: %s%s: %v", e.Library, loc, e.Err)
}

func (e *EvalError) Unwrap() error { return e.Err }

type panicErr struct{ err error }

func (c *Context) recoverErr(err *error) {
	if r := recover(); r != nil {
		// Abandon the definitions that were being evaluated so that the
		// context stays usable.
		for i, s := range c.state {
			if s == 1 {
				c.state[i] = 0
			}
		}
		c.depth = 0
		if pe, ok := r.(panicErr); ok {
			*err = pe.err
			return
		}
		if ce, ok := r.(*cql.Error); ok {
			*err = ce
			return
		}
		// An engine bug must not take the caller down with it: report it as
		// an error for this patient, with the stack for diagnosis.
		*err = fmt.Errorf("%w: %v\n%s", ErrInternal, r, debug.Stack())
	}
}

// ErrInternal is returned (wrapped) when evaluation hits an engine bug (a
// recovered panic); the message carries the stack.
var ErrInternal = errors.New("elm: internal error")

func (c *Context) fail(err error) {
	panic(panicErr{err: err})
}

func (c *Context) evalDef(d *exprDef) cql.Value {
	switch c.state[d.slot] {
	case 2:
		return c.memo[d.slot]
	case 1:
		c.fail(fmt.Errorf("elm: %s: definition %q refers to itself", d.lib.id, d.name))
	}
	c.state[d.slot] = 1
	v := d.fn(c)
	c.memo[d.slot] = v
	c.state[d.slot] = 2
	return v
}

// resources returns the parsed resources of the retrieve type index i.
func (c *Context) resources(i int) []*cql.FHIR {
	if c.resOK[i] {
		return c.res[i]
	}
	typ := c.p.retrTypes[i]
	if c.data == nil {
		c.resOK[i] = true
		return nil
	}
	if err := c.ctx.Err(); err != nil {
		c.fail(fmt.Errorf("elm: retrieve %s: %w", typ, err))
	}
	raws, err := c.data.Retrieve(c.ctx, typ)
	if err != nil {
		c.fail(fmt.Errorf("elm: retrieve %s: %w", typ, err))
	}
	t := c.p.model.Type(typ)
	out := make([]*cql.FHIR, 0, len(raws))
	for _, raw := range raws {
		n, err := c.arena.Parse(raw)
		if err != nil {
			c.fail(fmt.Errorf("elm: retrieve %s: %w", typ, err))
		}
		out = append(out, c.alloc.NewFHIR(n, nil, t))
	}
	c.res[i], c.resOK[i] = out, true
	return out
}

// resolve finds the patient's resource a reference ("Type/id", possibly
// absolute or versioned) points to, or nil.
func (c *Context) resolve(ref string) cql.Value {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return nil
	}
	typ, id := parts[len(parts)-2], parts[len(parts)-1]
	t := c.p.model.Type(typ)
	if t == nil || !t.Resource {
		return nil
	}
	for _, r := range c.resourcesOf(typ) {
		if r.ID() == id {
			return r
		}
	}
	return nil
}

// resourcesOf returns the parsed resources of any type, through the
// compiled retrieve cache when the type has one.
func (c *Context) resourcesOf(typ string) []*cql.FHIR {
	for i, t := range c.p.retrTypes {
		if t == typ {
			return c.resources(i)
		}
	}
	if rs, ok := c.dyn[typ]; ok {
		return rs
	}
	var out []*cql.FHIR
	if c.data != nil {
		raws, err := c.data.Retrieve(c.ctx, typ)
		if err != nil {
			c.fail(fmt.Errorf("elm: retrieve %s: %w", typ, err))
		}
		t := c.p.model.Type(typ)
		for _, raw := range raws {
			n, err := c.arena.Parse(raw)
			if err != nil {
				c.fail(fmt.Errorf("elm: retrieve %s: %w", typ, err))
			}
			out = append(out, c.alloc.NewFHIR(n, nil, t))
		}
	}
	if c.dyn == nil {
		c.dyn = map[string][]*cql.FHIR{}
	}
	c.dyn[typ] = out
	return out
}
