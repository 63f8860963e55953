package measure

import (
	"context"
	"fmt"
	"sync"

	"github.com/equitas/equitas/measures/elm"
)

// Measure is a compiled measure: immutable and safe for concurrent use.
type Measure struct {
	Def     *Definition
	Program *elm.Program
	groups  []compiledGroup
	sde     []criterion
}

// criterion is one Measure criteria expression resolved against the root library.
type criterion struct {
	name string
	// ref is set for expression definitions; functions are called by name.
	ref      elm.DefRef
	function bool
}

type compiledGroup struct {
	pops  []criterion
	strat []compiledStratifier
}

type compiledStratifier struct {
	criteria []criterion // one, or one per component
}

// Compile compiles a loaded package. Every criteria expression of the
// Measure must be a definition (or, for measure observations and
// episode stratifiers, a function) of the primary library.
func Compile(ctx context.Context, pkg *Package, opts elm.Options) (*Measure, error) {
	prog, err := elm.Compile(ctx, pkg.Root.ID, elm.NewLibrarySet(pkg.Libraries...), pkg.Terminology, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: compiling %s (%s): %w", ErrBadContent, pkg.Root.ID, pkg.LibraryFiles[pkg.Root.ID.String()], err)
	}
	m := &Measure{Def: pkg.Definition, Program: prog}
	stmts := map[string]statement{}
	for _, s := range pkg.statements {
		// Functions are overloaded; keep the first definition seen unless a
		// plain expression definition exists.
		if prev, ok := stmts[s.name]; ok && !prev.function {
			continue
		}
		stmts[s.name] = s
	}
	resolve := func(where, name string, functionOK bool) (criterion, error) {
		if ref, ok := prog.Ref(name); ok {
			return criterion{name: name, ref: ref}, nil
		}
		if s, ok := stmts[name]; ok && s.function && functionOK {
			return criterion{name: name, function: true}, nil
		}
		if s, ok := stmts[name]; ok && s.function {
			return criterion{}, fmt.Errorf("%w: %s: %q is a function in library %s; a definition is needed here", ErrBadContent, where, name, pkg.Root.ID)
		}
		return criterion{}, fmt.Errorf("%w: %s: expression %q is not defined in library %s (%s)", ErrBadContent, where, name, pkg.Root.ID, pkg.LibraryFiles[pkg.Root.ID.String()])
	}
	for gi := range m.Def.Groups {
		g := &m.Def.Groups[gi]
		var cg compiledGroup
		for _, p := range g.Populations {
			c, err := resolve(fmt.Sprintf("%s group %d population %s", pkg.MeasureFile, gi+1, p.Code), p.Expression, p.Code == MeasureObservation)
			if err != nil {
				return nil, err
			}
			cg.pops = append(cg.pops, c)
		}
		for si, s := range g.Stratifiers {
			where := fmt.Sprintf("%s group %d stratifier %d", pkg.MeasureFile, gi+1, si+1)
			var cs compiledStratifier
			exprs := []string{s.Expression}
			if len(s.Components) > 0 {
				exprs = exprs[:0]
				for _, c := range s.Components {
					exprs = append(exprs, c.Expression)
				}
			}
			for _, e := range exprs {
				c, err := resolve(where, e, g.IsEpisodeBased())
				if err != nil {
					return nil, err
				}
				cs.criteria = append(cs.criteria, c)
			}
			cg.strat = append(cg.strat, cs)
		}
		m.groups = append(m.groups, cg)
	}
	for _, s := range m.Def.SupplementalData {
		c, err := resolve(fmt.Sprintf("%s supplementalData %s", pkg.MeasureFile, s.ID), s.Expression, false)
		if err != nil {
			return nil, err
		}
		m.sde = append(m.sde, c)
	}
	return m, nil
}

// Cache holds compiled measures keyed by the Measure's url|version. It is
// safe for concurrent use; concurrent loads of one measure compile it once.
type Cache struct {
	opts    elm.Options
	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	done chan struct{}
	m    *Measure
	err  error
}

// NewCache returns an empty cache compiling with opts.
func NewCache(opts elm.Options) *Cache {
	return &Cache{opts: opts, entries: map[string]*cacheEntry{}}
}

// Load returns the compiled measure name from content, compiling it on
// first use. Failed loads are not cached.
func (c *Cache) Load(ctx context.Context, content Content, name string) (*Measure, error) {
	def, _, err := content.Definition(name)
	if err != nil {
		return nil, err
	}
	key := def.Canonical()
	c.mu.Lock()
	e, ok := c.entries[key]
	if !ok {
		e = &cacheEntry{done: make(chan struct{})}
		c.entries[key] = e
	}
	c.mu.Unlock()
	if ok {
		select {
		case <-e.done:
			return e.m, e.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.m, e.err = c.build(ctx, content, name)
	if e.err != nil {
		c.mu.Lock()
		delete(c.entries, key)
		c.mu.Unlock()
	}
	close(e.done)
	return e.m, e.err
}

func (c *Cache) build(ctx context.Context, content Content, name string) (*Measure, error) {
	pkg, err := content.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	return Compile(ctx, pkg, c.opts)
}

// Len returns the number of cached measures.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
