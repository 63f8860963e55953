// Package catalog serves the measures held in a FHIR store: the Measure,
// Library (ELM) and ValueSet resources clients load through the REST API
// (or `equitas measure load`) are compiled once into measure.Measures,
// cached by Measure id and canonical, and recompiled when any resource a
// measure was built from changes. It also loads the official eCQM content
// layout into a store and evaluates measures for $evaluate-measure.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/store"
)

// ErrNotFound is returned when no Measure matches a reference.
var ErrNotFound = errors.New("catalog: measure not found")

// Options tune a Catalog.
type Options struct {
	// ELM are the compile options of every measure.
	ELM    elm.Options
	Logger *slog.Logger
}

// Catalog compiles and caches the store's measures. It is safe for
// concurrent use; concurrent requests for one measure compile it once.
type Catalog struct {
	st   store.Store
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry // by Measure id
}

// entry is one compiled (or failed) measure and what it was built from.
type entry struct {
	done chan struct{}
	m    *measure.Measure
	reqs *requirements
	err  error
	deps *deps

	mu   sync.Mutex
	asOf time.Time // changes after this instant have not been checked yet
}

// New returns a catalog over st.
func New(st store.Store, opts Options) *Catalog {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Catalog{st: st, opts: opts, log: log.With("component", "measure-catalog"), entries: map[string]*entry{}}
}

// Measure returns the compiled measure ref names: a Measure id,
// "Measure/id", or a canonical url with an optional "|version". It
// compiles on first use and whenever the Measure, one of its Libraries or
// one of its ValueSets changed since. Unknown measures yield ErrNotFound;
// broken content an error wrapping measure.ErrBadContent that names the
// problem.
func (c *Catalog) Measure(ctx context.Context, ref string) (*measure.Measure, error) {
	e, err := c.entry(ctx, ref)
	if err != nil {
		return nil, err
	}
	return e.m, nil
}

func (c *Catalog) entry(ctx context.Context, ref string) (*entry, error) {
	id, err := c.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	for {
		c.mu.Lock()
		e, ok := c.entries[id]
		if !ok {
			e = &entry{done: make(chan struct{})}
			c.entries[id] = e
		}
		c.mu.Unlock()
		if !ok {
			c.build(ctx, id, e)
			// A cancelled build says nothing about the content, and
			// remembering unknown ids would let requests grow the cache.
			if e.err != nil && (ctx.Err() != nil || errors.Is(e.err, ErrNotFound)) {
				c.forget(id, e)
			}
			return e, e.err
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		stale, err := c.stale(ctx, e)
		if err != nil {
			return nil, err
		}
		if !stale {
			return e, e.err
		}
		c.forget(id, e)
	}
}

// forget drops e if it is still the entry of id.
func (c *Catalog) forget(id string, e *entry) {
	c.mu.Lock()
	if c.entries[id] == e {
		delete(c.entries, id)
	}
	c.mu.Unlock()
}

// build loads and compiles Measure/id from one snapshot of the store.
func (c *Catalog) build(ctx context.Context, id string, e *entry) {
	defer close(e.done)
	start := time.Now()
	snap, err := c.st.Snapshot(ctx)
	if err != nil {
		e.err = fmt.Errorf("catalog: %w", err)
		return
	}
	defer snap.Close()
	e.asOf = snap.Time()
	src := &storeSource{snap: snap, deps: newDeps()}
	e.deps = src.deps
	e.deps.add("Measure", id, 0)
	r, err := snap.Read(ctx, "Measure", id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		e.err = fmt.Errorf("%w: Measure/%s", ErrNotFound, id)
		return
	}
	if err != nil {
		e.err = fmt.Errorf("catalog: reading Measure/%s: %w", id, err)
		return
	}
	e.deps.add("Measure", id, r.Version)
	def, err := measure.ParseDefinition(r.Body)
	if err != nil {
		e.err = fmt.Errorf("%w: Measure/%s: %w", measure.ErrBadContent, id, err)
		return
	}
	if def.ID == "" {
		def.ID = id
	}
	pkg, err := measure.Assemble(ctx, def, "Measure/"+id, src)
	if err != nil {
		e.err = err
		return
	}
	m, err := measure.Compile(ctx, pkg, c.opts.ELM)
	if err != nil {
		e.err = err
		return
	}
	e.m, e.reqs = m, newRequirements(pkg)
	for _, w := range m.Program.Warnings() {
		c.log.Debug("measure compile warning", "measure", id, "warning", w)
	}
	c.log.Info("measure compiled", "measure", id, "canonical", def.Canonical(), "libraries", len(pkg.Libraries),
		"valueSets", pkg.Terminology.Len(), "duration", time.Since(start).Round(time.Millisecond))
}

// dependencyTypes are the resource types a compiled measure depends on.
var dependencyTypes = []string{"Measure", "Library", "ValueSet"}

// stale reports whether a resource e was built from changed, or one
// appeared that its lookups would now find. It reads only the versions
// written since the last check (an index range that is empty when nothing
// changed), so checking on every request is cheap.
func (c *Catalog) stale(ctx context.Context, e *entry) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	snap, err := c.st.Snapshot(ctx)
	if err != nil {
		return false, fmt.Errorf("catalog: %w", err)
	}
	now := snap.Time()
	snap.Close()
	for _, typ := range dependencyTypes {
		changed, err := c.st.History(ctx, store.HistoryQuery{Type: typ, Since: e.asOf, Count: -1})
		if err != nil {
			return false, fmt.Errorf("catalog: checking %s changes: %w", typ, err)
		}
		for _, r := range changed {
			if e.deps.affectedBy(r) {
				return true, nil
			}
		}
	}
	e.asOf = now
	return false, nil
}

// resolve turns a reference into a Measure id.
func (c *Catalog) resolve(ctx context.Context, ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", fmt.Errorf("%w: empty measure reference", ErrNotFound)
	}
	if id, ok := strings.CutPrefix(ref, "Measure/"); ok && !strings.Contains(id, "/") {
		return id, nil
	}
	if !strings.Contains(ref, "/") && !strings.Contains(ref, ":") {
		return ref, nil
	}
	url, version := ref, ""
	if i := strings.LastIndexByte(ref, '|'); i >= 0 {
		url, version = ref[:i], ref[i+1:]
	}
	q := store.Query{Type: "Measure", Params: []store.Param{{Name: "url", Values: []string{url}}}, Count: 100}
	if version != "" {
		q.Params = append(q.Params, store.Param{Name: "version", Values: []string{version}})
	}
	res, err := c.st.Search(ctx, q)
	if err != nil {
		return "", fmt.Errorf("catalog: looking up Measure %s: %w", ref, err)
	}
	best := pick(res.Resources, url, version)
	if best == nil {
		return "", fmt.Errorf("%w: no Measure with url %s", ErrNotFound, ref)
	}
	return best.ID, nil
}

// List returns the definitions of the store's Measures (those that parse),
// sorted by canonical.
func (c *Catalog) List(ctx context.Context) ([]*measure.Definition, error) {
	var out []*measure.Definition
	err := c.st.Scan(ctx, "Measure", time.Time{}, func(r *store.Resource) error {
		def, err := measure.ParseDefinition(r.Body)
		if err != nil {
			c.log.Warn("unreadable Measure in store", "measure", r.ID, "error", err)
			return nil
		}
		if def.ID == "" {
			def.ID = r.ID
		}
		out = append(out, def)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: listing measures: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Canonical() < out[j].Canonical() })
	return out, nil
}

// Len returns the number of cached entries (compiled or failed).
func (c *Catalog) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
