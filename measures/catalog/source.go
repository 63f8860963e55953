package catalog

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/terminology"
	"github.com/equitas/equitas/store"
)

// storeSource finds a measure's libraries and value sets in a store
// snapshot, recording what it read (and looked for) so the catalog knows
// which changes make the compiled measure stale.
type storeSource struct {
	snap store.Snapshot
	deps *deps
}

func (s *storeSource) Library(ctx context.Context, url, name, version string) ([]byte, string, error) {
	q := store.Query{Type: "Library", Count: 100}
	if url != "" {
		s.deps.watchURL(url)
		q.Params = append(q.Params, store.Param{Name: "url", Values: []string{url}})
	} else {
		s.deps.watchName(name)
		q.Params = append(q.Params, store.Param{Name: "name", Modifier: "exact", Values: []string{name}})
	}
	if version != "" {
		q.Params = append(q.Params, store.Param{Name: "version", Values: []string{version}})
	}
	res, err := s.snap.Search(ctx, q)
	if err != nil {
		return nil, "the store", fmt.Errorf("looking up Library %s%s: %w", url, name, err)
	}
	var hits []*store.Resource
	for _, r := range res.Resources {
		h := gjson.GetManyBytes(r.Body, "url", "name")
		if (url != "" && h[0].String() == url) || (url == "" && (h[1].String() == name || lastSegment(h[0].String()) == name)) {
			hits = append(hits, r)
		}
	}
	best := pick(hits, "", version)
	if best == nil {
		return nil, "", nil
	}
	s.deps.add("Library", best.ID, best.Version)
	s.deps.watchURL(gjson.GetBytes(best.Body, "url").String())
	return best.Body, "Library/" + best.ID, nil
}

func (s *storeSource) Terminology(ctx context.Context, refs []measure.ValueSetRef) (*terminology.Index, error) {
	idx := terminology.NewIndex()
	seen := map[string]bool{}
	for _, ref := range refs {
		if seen[ref.ID] {
			continue
		}
		seen[ref.ID] = true
		s.deps.watchURL(ref.ID)
		res, err := s.snap.Search(ctx, store.Query{Type: "ValueSet", Count: 100,
			Params: []store.Param{{Name: "url", Values: []string{ref.ID}}}})
		if err != nil {
			return nil, fmt.Errorf("catalog: looking up ValueSet %s: %w", ref.ID, err)
		}
		// Every version is indexed: the index picks by version when the
		// ELM pins one and falls back to the URL otherwise.
		sort.Slice(res.Resources, func(i, j int) bool {
			return gjson.GetBytes(res.Resources[i].Body, "version").String() < gjson.GetBytes(res.Resources[j].Body, "version").String()
		})
		for _, r := range res.Resources {
			if gjson.GetBytes(r.Body, "url").String() != ref.ID {
				continue
			}
			s.deps.add("ValueSet", r.ID, r.Version)
			if err := idx.AddValueSet(r.Body); err != nil {
				return nil, fmt.Errorf("%w: ValueSet/%s (%s, used by library %s): %w", measure.ErrBadContent, r.ID, ref.Name, ref.UsedBy, err)
			}
		}
	}
	return idx, nil
}

func (s *storeSource) LibrariesWhere() string { return "the server's Library resources" }
func (s *storeSource) ValueSetsWhere() string { return "the server's ValueSet resources" }

// pick chooses among resources with the same canonical: the given version,
// else the highest version (compared as dotted numbers).
func pick(rs []*store.Resource, url, version string) *store.Resource {
	var best *store.Resource
	bestV := ""
	for _, r := range rs {
		h := gjson.GetManyBytes(r.Body, "url", "version")
		if url != "" && h[0].String() != url {
			continue
		}
		v := h[1].String()
		if version != "" && v != version {
			continue
		}
		if best == nil || compareVersions(v, bestV) > 0 {
			best, bestV = r, v
		}
	}
	return best
}

// compareVersions compares dotted versions numerically where both parts
// are numbers ("4.10.000" > "4.9.000").
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, y := strings.TrimLeft(pa[i], "0"), strings.TrimLeft(pb[i], "0")
		if isDigits(x) && isDigits(y) && len(x) != len(y) {
			if len(x) < len(y) {
				return -1
			}
			return 1
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	return len(pa) - len(pb)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func lastSegment(u string) string {
	if i := strings.LastIndexByte(u, '/'); i >= 0 {
		return u[i+1:]
	}
	return u
}

// deps is what a compiled measure was built from: resource versions read
// and the canonicals and names looked up (found or not).
type deps struct {
	mu       sync.Mutex
	versions map[string]uint64 // "Type/id" → version read (0: looked up, absent)
	urls     map[string]bool
	names    map[string]bool
}

func newDeps() *deps {
	return &deps{versions: map[string]uint64{}, urls: map[string]bool{}, names: map[string]bool{}}
}

func (d *deps) add(typ, id string, version uint64) {
	d.mu.Lock()
	d.versions[typ+"/"+id] = version
	d.mu.Unlock()
}

func (d *deps) watchURL(u string) {
	if u == "" {
		return
	}
	d.mu.Lock()
	d.urls[u] = true
	d.mu.Unlock()
}

func (d *deps) watchName(n string) {
	d.mu.Lock()
	d.names[n] = true
	d.mu.Unlock()
}

// affectedBy reports whether a changed resource version may change what
// the measure would be built from.
func (d *deps) affectedBy(r *store.Resource) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.versions[r.Type+"/"+r.ID]; ok && v != r.Version {
		return true
	}
	if r.Deleted || r.Type == "Measure" {
		return false
	}
	h := gjson.GetManyBytes(r.Body, "url", "name")
	return d.urls[h[0].String()] || (r.Type == "Library" && (d.names[h[1].String()] || d.names[lastSegment(h[0].String())]))
}
