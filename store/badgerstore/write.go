package badgerstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/badger/v4"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/store"
)

var (
	validID   = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	validType = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
)

// request is one Commit waiting for the writer.
type request struct {
	ctx  context.Context
	tx   store.Tx
	size int
	done chan result
}

type result struct {
	res []*store.Resource
	err error
}

// Commit implements store.Store. Concurrent commits are grouped into one
// badger transaction; each succeeds or fails on its own.
func (s *Store) Commit(ctx context.Context, tx store.Tx) ([]*store.Resource, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(tx.Writes) == 0 && len(tx.KV) == 0 {
		return nil, nil
	}
	size := 0
	for _, w := range tx.Writes {
		size += len(w.Body) + 256
	}
	for k, v := range tx.KV {
		if k == "" {
			return nil, fmt.Errorf("badgerstore: empty KV key: %w", store.ErrInvalid)
		}
		size += len(k) + len(v) + 16
	}
	req := &request{ctx: ctx, tx: tx, size: size, done: make(chan result, 1)}
	select {
	case s.reqs <- req:
	case <-s.quit:
		return nil, store.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued, the outcome is waited for even if ctx ends, so the
	// caller never reports failure for a write that became durable.
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-s.stopped:
		select {
		case r := <-req.done:
			return r.res, r.err
		default:
			return nil, store.ErrClosed
		}
	}
}

// writer is the single goroutine that applies commits.
func (s *Store) writer() {
	defer close(s.stopped)
	for {
		var first *request
		select {
		case first = <-s.reqs:
		case <-s.quit:
			s.failPending()
			return
		}
		group := []*request{first}
		bytes := first.size
	drain:
		for bytes < s.opts.MaxGroupBytes {
			select {
			case r := <-s.reqs:
				group = append(group, r)
				bytes += r.size
			default:
				break drain
			}
		}
		s.process(group)
	}
}

func (s *Store) failPending() {
	for {
		select {
		case r := <-s.reqs:
			r.done <- result{err: store.ErrClosed}
		default:
			return
		}
	}
}

// mutation is one key change; del marks a delete.
type mutation struct {
	val []byte
	del bool
}

// changes is the write set of a group, layered so one failing request can
// be dropped without affecting the others.
type changes struct {
	parent *changes
	m      map[string]mutation
	counts map[string]int64
}

func newChanges(parent *changes) *changes {
	return &changes{parent: parent, m: map[string]mutation{}, counts: map[string]int64{}}
}

func (c *changes) lookup(k string) (mutation, bool) {
	for l := c; l != nil; l = l.parent {
		if m, ok := l.m[k]; ok {
			return m, true
		}
	}
	return mutation{}, false
}

func (c *changes) set(k string, v []byte) { c.m[k] = mutation{val: v} }
func (c *changes) del(k string)           { c.m[k] = mutation{del: true} }

// merge folds a successful request's changes into its parent.
func (c *changes) merge() {
	for k, m := range c.m {
		c.parent.m[k] = m
	}
	for t, n := range c.counts {
		c.parent.counts[t] += n
	}
}

// group is the state of one group commit.
type group struct {
	s   *Store
	txn *badger.Txn // read view of the committed state
	top *changes
	ts  int64
}

func (g *group) get(k []byte) ([]byte, error) {
	if m, ok := g.top.lookup(string(k)); ok {
		if m.del {
			return nil, nil
		}
		return m.val, nil
	}
	item, err := g.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func (s *Store) process(reqs []*request) {
	s.clockMu.Lock()
	defer s.clockMu.Unlock()

	s.applyGate.RLock()
	txn := s.db.NewTransaction(false)
	s.applyGate.RUnlock()
	defer txn.Discard()

	g := &group{s: s, txn: txn, top: newChanges(nil)}
	results := make([]result, len(reqs))
	ok := make([]bool, len(reqs))
	ts := max(s.opts.Now().UnixMicro(), s.lastTS+1, s.floorTS+1)
	for i, req := range reqs {
		if err := req.ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		local := newChanges(g.top)
		res, err := g.apply(local, req.tx, ts)
		if err != nil {
			results[i].err = err
			continue
		}
		local.merge()
		results[i].res, ok[i] = res, true
		ts++
	}
	lastTS := ts - 1
	var err error
	if len(g.top.m) > 0 || len(g.top.counts) > 0 {
		if err = g.finishCounts(); err == nil {
			g.top.set(string(key(pMeta, "clock")), []byte(tsBytes(lastTS)))
			err = s.write(g.top.m)
		}
	}
	if err == nil && lastTS > s.lastTS {
		s.lastTS = lastTS
	}
	for i, req := range reqs {
		if ok[i] && err != nil {
			results[i] = result{err: err}
		}
		req.done <- results[i]
	}
}

// finishCounts turns the count deltas into count keys.
func (g *group) finishCounts() error {
	for typ, d := range g.top.counts {
		if d == 0 {
			continue
		}
		k := key(pCount, typ)
		v, err := g.get(k)
		if err != nil {
			return err
		}
		var n int64
		if len(v) == 8 {
			n = int64(binary.BigEndian.Uint64(v))
		}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(n+d))
		g.top.set(string(k), b[:])
	}
	return nil
}

// apply validates one transaction against the current state and records
// its changes in c.
func (g *group) apply(c *changes, tx store.Tx, ts int64) ([]*store.Resource, error) {
	out := make([]*store.Resource, 0, len(tx.Writes))
	save := g.top
	g.top = c // reads see this request's own earlier writes
	defer func() { g.top = save }()
	for i, w := range tx.Writes {
		res, err := g.applyWrite(c, w, ts)
		if err != nil {
			return nil, &store.WriteError{Index: i, Type: w.Type, ID: w.ID, Err: err}
		}
		out = append(out, res)
	}
	for k, v := range tx.KV {
		if v == nil {
			c.del(string(key(pKV, k)))
		} else {
			c.set(string(key(pKV, k)), append([]byte(nil), v...))
		}
	}
	return out, nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (g *group) applyWrite(c *changes, w store.Write, ts int64) (*store.Resource, error) {
	if !validType.MatchString(w.Type) {
		return nil, fmt.Errorf("resource type %q: %w", w.Type, store.ErrInvalid)
	}
	if w.ID == "" && w.Op == store.OpPut {
		w.ID = newID()
	}
	if !validID.MatchString(w.ID) {
		return nil, fmt.Errorf("id %q: %w", w.ID, store.ErrInvalid)
	}
	ck := currentKey(w.Type, w.ID)
	v, err := g.get(ck)
	if err != nil {
		return nil, err
	}
	var cur *record
	if v != nil {
		if cur, err = decodeRecord(v); err != nil {
			return nil, err
		}
	}
	live := cur != nil && !cur.deleted
	var curVer uint64
	if cur != nil {
		curVer = cur.version
	}
	if w.IfMatch != 0 && (cur == nil || curVer != w.IfMatch) {
		return nil, fmt.Errorf("%w: expected version %d, current is %d", store.ErrVersionConflict, w.IfMatch, curVer)
	}
	var next *record
	switch w.Op {
	case store.OpPut:
		if w.IfNoneExist && live {
			return nil, fmt.Errorf("%w: %s/%s exists", store.ErrVersionConflict, w.Type, w.ID)
		}
		canon, err := canonical(w.Type, w.ID, w.Body)
		if err != nil {
			return nil, err
		}
		h := xxhash.Sum64(canon)
		if w.SkipUnchanged && live && cur.hash == h {
			return cur.resource(w.Type, w.ID), nil
		}
		ver := curVer + 1
		body, err := sjson.SetBytes(canon, "meta.versionId", strconv.FormatUint(ver, 10))
		if err == nil {
			body, err = sjson.SetBytes(body, "meta.lastUpdated", formatInstant(ts))
		}
		if err != nil {
			return nil, fmt.Errorf("setting meta: %v: %w", err, store.ErrInvalid)
		}
		next = &record{version: ver, ts: ts, hash: h, body: body}
	case store.OpDelete:
		if !live {
			// Deleting what is absent or already deleted changes nothing.
			if cur != nil {
				return cur.resource(w.Type, w.ID), nil
			}
			return &store.Resource{Type: w.Type, ID: w.ID, Deleted: true}, nil
		}
		next = &record{deleted: true, version: curVer + 1, ts: ts}
	default:
		return nil, fmt.Errorf("unknown op %d: %w", w.Op, store.ErrInvalid)
	}

	// Index maintenance: remove keys the new version no longer has, add
	// the new ones.
	var oldKeys, newKeys []string
	if live {
		oldKeys = g.s.ix.keys(w.Type, w.ID, cur.body)
	}
	if !next.deleted {
		newKeys = g.s.ix.keys(w.Type, w.ID, next.body)
	}
	i, j := 0, 0
	for i < len(oldKeys) || j < len(newKeys) {
		switch {
		case j == len(newKeys) || (i < len(oldKeys) && oldKeys[i] < newKeys[j]):
			c.del(oldKeys[i])
			i++
		case i == len(oldKeys) || newKeys[j] < oldKeys[i]:
			c.set(newKeys[j], nil)
			j++
		default:
			i++
			j++
		}
	}
	switch {
	case !live && !next.deleted:
		c.counts[w.Type]++
	case live && next.deleted:
		c.counts[w.Type]--
	}
	enc := next.encode()
	c.set(string(ck), enc)
	c.set(string(historyKey(w.Type, w.ID, next.version)), enc)
	c.set(string(typeHistKey(w.Type, ts, w.ID, next.version)), nil)
	c.set(string(sysHistKey(ts, w.Type, w.ID, next.version)), nil)
	return next.resource(w.Type, w.ID), nil
}

// canonical checks a resource body and returns it with id set and
// meta.versionId/meta.lastUpdated removed; other bytes are untouched.
func canonical(typ, id string, body []byte) ([]byte, error) {
	if !gjson.ValidBytes(body) {
		return nil, fmt.Errorf("body is not valid JSON: %w", store.ErrInvalid)
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, fmt.Errorf("body is not a JSON object: %w", store.ErrInvalid)
	}
	if rt := root.Get("resourceType").String(); rt != typ {
		return nil, fmt.Errorf("resourceType %q does not match %s: %w", rt, typ, store.ErrInvalid)
	}
	out := body
	var err error
	if root.Get("id").String() != id || root.Get("id").Type != gjson.String {
		if out, err = sjson.SetBytes(out, "id", id); err != nil {
			return nil, fmt.Errorf("setting id: %v: %w", err, store.ErrInvalid)
		}
	}
	meta := root.Get("meta")
	if meta.Exists() && !meta.IsObject() {
		return nil, fmt.Errorf("meta is not an object: %w", store.ErrInvalid)
	}
	for _, p := range []string{"meta.versionId", "meta.lastUpdated"} {
		if gjson.GetBytes(out, p).Exists() {
			if out, err = sjson.DeleteBytes(out, p); err != nil {
				return nil, fmt.Errorf("clearing %s: %v: %w", p, err, store.ErrInvalid)
			}
		}
	}
	// An emptied meta goes too (FHIR forbids empty elements), so a stored
	// body fed back in hashes like the original.
	if m := gjson.GetBytes(out, "meta"); m.IsObject() && strings.TrimSpace(m.Raw[1:len(m.Raw)-1]) == "" {
		if out, err = sjson.DeleteBytes(out, "meta"); err != nil {
			return nil, fmt.Errorf("clearing meta: %v: %w", err, store.ErrInvalid)
		}
	}
	if &out[0] == &body[0] {
		out = append([]byte(nil), out...) // never alias the caller's slice
	}
	return out, nil
}

// write makes a group's changes durable: one badger transaction when they
// fit, else the staged path.
func (s *Store) write(m map[string]mutation) error {
	keys := make([]string, 0, len(m))
	size := int64(0)
	for k, mu := range m {
		keys = append(keys, k)
		size += int64(len(k)+len(mu.val)) + 32
	}
	sort.Strings(keys)
	if size < s.maxBatch*8/10 && int64(len(keys)) < s.maxCount*8/10 {
		txn := s.db.NewTransaction(true)
		defer txn.Discard()
		for _, k := range keys {
			mu := m[k]
			var err error
			if mu.del {
				err = txn.Delete([]byte(k))
			} else {
				err = txn.Set([]byte(k), mu.val)
			}
			if err != nil {
				return fmt.Errorf("badgerstore: %w", err)
			}
		}
		if err := txn.Commit(); err != nil {
			return fmt.Errorf("badgerstore: commit: %w", err)
		}
		return nil
	}
	return s.writeStaged(keys, m)
}
