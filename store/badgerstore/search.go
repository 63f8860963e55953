package badgerstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/searchparam"
)

// Paging limits of Search.
const (
	DefaultCount = 50
	MaxCount     = 1000
	// enoughCandidates stops intersecting index results: checking this many
	// resources against the remaining parameters is cheaper than scanning
	// more index ranges.
	enoughCandidates = 64
	// probeCandidates bounds the first, cheap look at each criterion.
	probeCandidates = 256
)

type sortSpec struct {
	def  searchparam.Def
	desc bool
}

// sortKey is a match's position: one (present, value) pair per sort
// parameter, then the id.
type sortKey struct {
	Keys []string `json:"k,omitempty"` // "1"+value when present, "0" when absent
	ID   string   `json:"i"`
}

// fits reports whether a decoded cursor has one well-formed key per sort
// parameter; a cursor is client input, and compareKeys reads each key's
// presence byte.
func (k *sortKey) fits(sorts int) bool {
	if len(k.Keys) != sorts {
		return false
	}
	for _, v := range k.Keys {
		if v == "" || (v[0] != '0' && v[0] != '1') {
			return false
		}
	}
	return true
}

func (r *reader) search(ctx context.Context, q store.Query) (out *store.SearchResult, err error) {
	if !isValidType(q.Type) {
		return nil, &store.ParamError{Param: "_type", Reason: fmt.Sprintf("%q is not a resource type", q.Type)}
	}
	var crits []*searchparam.Criterion
	for _, p := range q.Params {
		if searchparam.IsResultParam(p.Name) {
			continue
		}
		c, err := searchparam.Parse(q.Type, p)
		if err != nil {
			return nil, err
		}
		crits = append(crits, c)
	}
	var sorts []sortSpec
	for _, sk := range q.Sort {
		def, ok := searchparam.Lookup(q.Type, sk.Param)
		if !ok {
			return nil, &store.ParamError{Param: "_sort", Reason: "unknown parameter " + sk.Param}
		}
		switch def.Type {
		case searchparam.Composite:
			return nil, &store.ParamError{Param: "_sort", Reason: "cannot sort by " + sk.Param}
		}
		sorts = append(sorts, sortSpec{def: def, desc: sk.Descending})
	}
	count := q.Count
	if count <= 0 {
		count = DefaultCount
	}
	count = min(count, MaxCount)
	var after *sortKey
	if q.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		after = &sortKey{}
		if err != nil || json.Unmarshal(b, after) != nil || !after.fits(len(sorts)) {
			return nil, &store.ParamError{Param: "_cursor", Reason: "invalid or foreign paging cursor"}
		}
	}

	if len(crits) == 1 && q.Filter == nil && len(sorts) == 0 && crits[0].Exact() {
		if rs, ok := crits[0].Ranges(); ok && len(rs) == 1 && strings.HasSuffix(rs[0].From, "\x00") && rs[0].Contains == "" && rs[0].Suffix == "" {
			from := ""
			if after != nil {
				from = after.ID
			}
			return r.streamTerm(ctx, q.Type, crits[0], rs[0], from, count, q.Total)
		}
	}

	cands, exact, err := r.candidates(ctx, q.Type, crits)
	if err != nil {
		return nil, err
	}
	if len(crits) == 0 && q.Filter == nil && len(sorts) == 0 && q.Total {
		// Every resource of the type: the total is the maintained count.
		n, err := r.count(q.Type)
		if err != nil {
			return nil, err
		}
		q.Total = false
		defer func() {
			if out != nil {
				out.Total = int(n)
			}
		}()
	}
	if exact && q.Filter == nil && len(sorts) == 0 {
		// The index answers the search exactly: the total is the candidate
		// count and the page streams from the cursor unchecked.
		crits = nil
		if q.Total {
			q.Total = false
			defer func(n int) {
				if out != nil {
					out.Total = n
				}
			}(len(cands))
		}
	}
	match := func(res *store.Resource) bool {
		for _, c := range crits {
			if !c.Match(res.Body) {
				return false
			}
		}
		return q.Filter == nil || q.Filter(res)
	}

	out = &store.SearchResult{Total: -1}
	if len(sorts) == 0 && !q.Total {
		// Id order: stream from the cursor and stop after one extra match.
		var page []*store.Resource
		more := false
		visit := func(res *store.Resource) (bool, error) {
			if !match(res) {
				return true, nil
			}
			if len(page) == count {
				more = true
				return false, nil
			}
			page = append(page, res)
			return true, nil
		}
		from := ""
		if after != nil {
			from = after.ID
		}
		if err := r.eachCandidate(ctx, q.Type, cands, from, visit); err != nil {
			return nil, err
		}
		out.Resources = page
		if more {
			out.NextCursor = encodeCursor(sortKey{ID: page[len(page)-1].ID})
		}
		return out, nil
	}

	// Sorted or counted: rank every match by its sort key, then load the page.
	var all []sortKey
	err = r.eachCandidate(ctx, q.Type, cands, "", func(res *store.Resource) (bool, error) {
		if !match(res) {
			return true, nil
		}
		k := sortKey{ID: res.ID}
		for _, s := range sorts {
			if v, ok := sortValue(s, res); ok {
				k.Keys = append(k.Keys, "1"+v)
			} else {
				k.Keys = append(k.Keys, "0")
			}
		}
		all = append(all, k)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if q.Total {
		out.Total = len(all)
	}
	less := func(a, b *sortKey) bool { return compareKeys(sorts, a, b) < 0 }
	sort.Slice(all, func(i, j int) bool { return less(&all[i], &all[j]) })
	start := 0
	if after != nil {
		start = sort.Search(len(all), func(i int) bool { return less(after, &all[i]) })
	}
	end := min(start+count, len(all))
	for _, k := range all[start:end] {
		res, err := r.read(ctx, q.Type, k.ID)
		if err != nil {
			return nil, err
		}
		out.Resources = append(out.Resources, res)
	}
	if end < len(all) {
		out.NextCursor = encodeCursor(all[end-1])
	}
	return out, nil
}

func sortValue(s sortSpec, res *store.Resource) (string, bool) {
	if s.def.Name == "_id" {
		return res.ID, true
	}
	return searchparam.SortKey(s.def, res.Body, s.desc)
}

func compareKeys(sorts []sortSpec, a, b *sortKey) int {
	for i, s := range sorts {
		ka, kb := a.Keys[i], b.Keys[i]
		pa, pb := ka[0] == '1', kb[0] == '1'
		switch {
		case pa != pb: // absent values sort last either way
			if pa {
				return -1
			}
			return 1
		case ka != kb:
			c := strings.Compare(ka, kb)
			if s.desc {
				c = -c
			}
			return c
		}
	}
	return strings.Compare(a.ID, b.ID)
}

func encodeCursor(k sortKey) string {
	b, _ := json.Marshal(k)
	return base64.RawURLEncoding.EncodeToString(b)
}

// candidates narrows a search with the index: nil means every resource of
// the type; otherwise a superset of the matches' ids, exactly the matches
// when exact is set.
func (r *reader) candidates(ctx context.Context, typ string, crits []*searchparam.Criterion) (set map[string]struct{}, exact bool, err error) {
	exact = len(crits) > 0
	for _, c := range crits {
		exact = exact && c.Exact()
	}
	intersect := func(ids map[string]struct{}) {
		if set == nil {
			set = ids
			return
		}
		for id := range set {
			if _, ok := ids[id]; !ok {
				delete(set, id)
			}
		}
	}
	for _, c := range crits {
		if ids, ok := c.IDs(); ok {
			m := map[string]struct{}{}
			for _, id := range ids {
				rec, err := r.get(currentKey(typ, id))
				if err != nil {
					return nil, false, err
				}
				if rec != nil && !rec.deleted {
					m[id] = struct{}{}
				}
			}
			intersect(m)
		}
	}
	type indexed struct {
		c    *searchparam.Criterion
		rs   []searchparam.Range
		rank int
	}
	var todo []indexed
	for _, c := range crits {
		if _, ok := c.IDs(); ok {
			continue
		}
		rs, ok := c.Ranges()
		if !ok {
			continue
		}
		rank := 0
		switch c.Def.Type {
		case searchparam.URI:
			rank = 1
		case searchparam.String:
			rank = 2
		case searchparam.Date:
			rank = 3
		}
		if c.Modifier == "text" || c.Modifier == "contains" {
			rank = 4
		}
		todo = append(todo, indexed{c, rs, rank})
	}
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].rank < todo[j].rank })
	// scan collects the ids of one criterion's ranges, giving up (complete
	// false) past limit ids when limit >= 0.
	scan := func(t indexed, limit int) (map[string]struct{}, bool, error) {
		ids := map[string]struct{}{}
		base := prefixKey(pIndex, typ, r.s.ix.indexName(typ, t.c.Def.Name))
		complete := true
		for _, rg := range t.rs {
			from := append(append([]byte{}, base...), rg.From...)
			to := append(append([]byte{}, base...), rg.To...)
			contains, suffix := []byte(rg.Contains), []byte(rg.Suffix)
			err := r.rangeScan(ctx, from, to, func(k []byte) (bool, error) {
				i := bytes.LastIndexByte(k, 0)
				if len(contains) > 0 && !bytes.Contains(k[len(base):i], contains) {
					return true, nil
				}
				if len(suffix) > 0 && !bytes.HasSuffix(k[len(base):i], suffix) {
					return true, nil
				}
				ids[string(k[i+1:])] = struct{}{}
				if limit >= 0 && len(ids) > limit {
					complete = false
					return false, nil
				}
				return true, nil
			})
			if err != nil {
				return nil, false, fmt.Errorf("badgerstore: index scan %s: %w", t.c.Def.Name, err)
			}
			if !complete {
				break
			}
		}
		return ids, complete, nil
	}
	small := func() bool { return set != nil && len(set) <= enoughCandidates }
	// First probe every criterion a little: the selective ones complete
	// and narrow the set whatever order the parameters came in.
	var pending []indexed
	for _, t := range todo {
		if small() {
			// Few enough to check the remaining criteria on the bodies.
			return set, false, nil
		}
		ids, complete, err := scan(t, probeCandidates)
		if err != nil {
			return nil, false, err
		}
		if complete {
			intersect(ids)
		} else {
			pending = append(pending, t)
		}
	}
	// Then the broad ones, in full, while the set is still large.
	for _, t := range pending {
		if small() {
			return set, false, nil
		}
		ids, _, err := scan(t, -1)
		if err != nil {
			return nil, false, err
		}
		intersect(ids)
	}
	return set, exact, nil
}

// eachCandidate visits live current resources in id order, starting after
// the id from (exclusive): the candidate set when given, else all of the
// type.
func (r *reader) eachCandidate(ctx context.Context, typ string, cands map[string]struct{}, from string, fn func(*store.Resource) (bool, error)) error {
	if cands != nil {
		ids := make([]string, 0, len(cands))
		for id := range cands {
			if id > from {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for i, id := range ids {
			if i%256 == 255 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			res, err := r.live(typ, id)
			if err != nil {
				return err
			}
			if res == nil {
				continue
			}
			more, err := fn(res)
			if err != nil || !more {
				return err
			}
		}
		return nil
	}
	pfx := prefixKey(pCurrent, typ)
	opts := badger.DefaultIteratorOptions
	opts.Prefix = pfx
	opts.PrefetchSize = 64
	it := r.txn.NewIterator(opts)
	defer it.Close()
	seek := pfx
	if from != "" {
		seek = append(append([]byte{}, pfx...), from...)
	}
	n := 0
	for it.Seek(seek); it.ValidForPrefix(pfx); it.Next() {
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		item := it.Item()
		id := string(item.Key()[len(pfx):])
		if id <= from {
			continue
		}
		rec, err := itemRecord(item)
		if err != nil {
			return err
		}
		if rec.deleted {
			continue
		}
		more, err := fn(rec.resource(typ, id))
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (r *reader) count(typ string) (int64, error) {
	item, err := r.txn.Get(key(pCount, typ))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("badgerstore: count: %w", err)
	}
	var n int64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return errCorrupt
		}
		n = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	return n, err
}

// streamTerm answers a search with a single exact index term (code=X,
// patient=Y): its keys are in id order, so a page is read from the cursor
// on, and a total counts keys without loading anything.
func (r *reader) streamTerm(ctx context.Context, typ string, c *searchparam.Criterion, rg searchparam.Range, afterID string, count int, total bool) (*store.SearchResult, error) {
	base := prefixKey(pIndex, typ, r.s.ix.indexName(typ, c.Def.Name))
	lo := append(append([]byte{}, base...), rg.From...)
	hi := append(append([]byte{}, base...), rg.To...)
	out := &store.SearchResult{Total: -1}
	if total {
		n := 0
		if err := r.rangeScan(ctx, lo, hi, func([]byte) (bool, error) { n++; return true, nil }); err != nil {
			return nil, fmt.Errorf("badgerstore: index scan %s: %w", c.Def.Name, err)
		}
		out.Total = n
	}
	start := lo
	if afterID != "" {
		start = append(append(append([]byte{}, lo...), afterID...), 0)
	}
	var ids []string
	err := r.rangeScan(ctx, start, hi, func(k []byte) (bool, error) {
		ids = append(ids, string(k[len(lo):]))
		return len(ids) <= count, nil
	})
	if err != nil {
		return nil, fmt.Errorf("badgerstore: index scan %s: %w", c.Def.Name, err)
	}
	more := len(ids) > count
	if more {
		ids = ids[:count]
	}
	for _, id := range ids {
		res, err := r.live(typ, id)
		if err != nil {
			return nil, err
		}
		if res == nil {
			return nil, fmt.Errorf("%w: index entry for missing %s/%s", errCorrupt, typ, id)
		}
		out.Resources = append(out.Resources, res)
	}
	if more {
		out.NextCursor = encodeCursor(sortKey{ID: ids[len(ids)-1]})
	}
	return out, nil
}
