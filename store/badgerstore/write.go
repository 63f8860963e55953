package badgerstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/badger/v4"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/store"
)

// isValidID reports whether s is a FHIR id ([A-Za-z0-9\-.]{1,64}); it
// runs a few times per write, so it is a loop rather than a regexp.
func isValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isValidType reports whether s is a resource type name ([A-Z][A-Za-z]{1,63}).
func isValidType(s string) bool {
	if len(s) < 2 || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// request is one Commit waiting for the writer.
type request struct {
	ctx  context.Context
	tx   store.Tx
	prep []prepared
	size int
	done chan result
}

// prepared is the state-independent work of one write, done in the
// caller's goroutine so the single writer only decides and records: the
// canonical body, its hash and index keys, and the index keys of the
// current version as read just before queueing (reused when the writer
// finds the same version).
type prepared struct {
	err      error
	id       string
	canon    []byte
	hasMeta  bool // canon has a meta element
	valid    bool // canon is known to be valid JSON
	hash     uint64
	newKeys  [][]byte
	keyed    bool // newKeys computed
	oldVer   uint64
	oldLive  bool
	oldKeyed bool // oldKeys computed for oldVer
	oldKeys  [][]byte
}

func (s *Store) prepare(ws []store.Write) []prepared {
	out := make([]prepared, len(ws))
	// Large transactions are prepared on every core; the work per write is
	// independent.
	workers := min(runtime.GOMAXPROCS(0), len(ws)/prepareChunk+1)
	if workers <= 1 {
		s.prepareRange(ws, out)
		return out
	}
	var wg sync.WaitGroup
	step := (len(ws) + workers - 1) / workers
	for lo := 0; lo < len(ws); lo += step {
		hi := min(lo+step, len(ws))
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.prepareRange(ws[lo:hi], out[lo:hi])
		}()
	}
	wg.Wait()
	return out
}

// prepareChunk is the transaction size from which preparation fans out.
const prepareChunk = 256

func (s *Store) prepareRange(ws []store.Write, out []prepared) {
	txn, release, err := s.readTxn()
	if err != nil {
		return // the writer reports ErrClosed
	}
	defer release()
	r := &reader{s: s, txn: txn}
	for i, w := range ws {
		p := &out[i]
		p.id = w.ID
		if w.ID == "" && w.Op == store.OpPut {
			p.id = newID()
		}
		if !isValidType(w.Type) || !isValidID(p.id) {
			continue // reported by the writer
		}
		if w.Op == store.OpPut {
			if p.canon, p.hasMeta, p.valid, p.err = canonical(w.Type, p.id, w.Body); p.err != nil {
				continue
			}
			p.hash = xxhash.Sum64(p.canon)
		}
		rec, err := r.get(currentKey(w.Type, p.id))
		if err == nil && rec != nil {
			p.oldVer, p.oldLive = rec.version, !rec.deleted
			if w.Op == store.OpPut && w.SkipUnchanged && p.oldLive && rec.hash == p.hash {
				continue // most likely a no-op: the writer derives keys if not
			}
			if p.oldLive {
				p.oldKeys, p.oldKeyed = s.ix.keys(w.Type, p.id, rec.body), true
			}
		}
		if w.Op == store.OpPut {
			p.newKeys = s.ix.keysOf(w.Type, p.id, p.canon, p.valid)
			p.keyed = true
		}
	}
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
		// Current and history records plus about 25 index keys.
		size += 2*len(w.Body) + 2048
	}
	for k, v := range tx.KV {
		if k == "" {
			return nil, fmt.Errorf("badgerstore: empty KV key: %w", store.ErrInvalid)
		}
		size += len(k) + len(v) + 16
	}
	req := &request{ctx: ctx, tx: tx, prep: s.prepare(tx.Writes), size: size, done: make(chan result, 1)}
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

// writer is the single goroutine that applies commits. It takes what is
// queued (up to MaxGroupBytes) as one group: one badger transaction and one
// fsync for all of it.
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
		size := first.size
	drain:
		for size < s.opts.MaxGroupBytes {
			select {
			case r := <-s.reqs:
				group = append(group, r)
				size += r.size
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

// mutation is one key change; del marks a delete. The key is handed to
// badger as is, so it is never modified once recorded.
type mutation struct {
	key []byte
	val []byte
	del bool
}

// changes is the write set of a group, layered so one failing request can
// be dropped without affecting the others. Mutations are kept in order
// (later ones win); only current-version records are looked up again.
type changes struct {
	parent *changes
	// muts is shared by every layer of a group, so merging a request's
	// changes copies nothing: a failing request truncates it back to mark.
	muts    *[]mutation
	mark    int
	current map[string]mutation
	counts  map[string]int64
}

// newChanges starts a layer; a root layer (parent nil) gets room for
// about sizeHint mutations.
func newChanges(parent *changes, sizeHint int) *changes {
	c := &changes{parent: parent, current: map[string]mutation{}, counts: map[string]int64{}}
	if parent == nil {
		muts := make([]mutation, 0, sizeHint)
		c.muts = &muts
	} else {
		c.muts, c.mark = parent.muts, len(*parent.muts)
	}
	return c
}

func (c *changes) lookup(k string) (mutation, bool) {
	for l := c; l != nil; l = l.parent {
		if m, ok := l.current[k]; ok {
			return m, true
		}
	}
	return mutation{}, false
}

func (c *changes) set(k []byte, v []byte) { *c.muts = append(*c.muts, mutation{key: k, val: v}) }
func (c *changes) del(k []byte)           { *c.muts = append(*c.muts, mutation{key: k, del: true}) }

// setCurrent records a current-version record, which later writes of the
// same group read back.
func (c *changes) setCurrent(k []byte, v []byte) {
	c.set(k, v)
	c.current[string(k)] = mutation{key: k, val: v}
}

// drop discards a failed request's mutations.
func (c *changes) drop() { *c.muts = (*c.muts)[:c.mark] }

// merge folds a successful request's changes into its parent.
func (c *changes) merge() {
	for k, m := range c.current {
		c.parent.current[k] = m
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

	hint := 8
	for _, r := range reqs {
		// Per write: current, history, 2 history-index keys, about 25
		// index keys (a few more on update).
		hint += 32*len(r.tx.Writes) + len(r.tx.KV)
	}
	g := &group{s: s, txn: txn, top: newChanges(nil, hint)}
	results := make([]result, len(reqs))
	ok := make([]bool, len(reqs))
	ts := max(s.opts.Now().UnixMicro(), s.lastTS+1, s.floorTS+1)
	for i, req := range reqs {
		if err := req.ctx.Err(); err != nil {
			results[i].err = err
			continue
		}
		local := newChanges(g.top, 0)
		res, err := g.apply(local, req, ts)
		if err != nil {
			local.drop()
			results[i].err = err
			continue
		}
		local.merge()
		results[i].res, ok[i] = res, true
		ts++
	}
	lastTS := ts - 1
	var err error
	if len(*g.top.muts) > 0 {
		if err = g.finishCounts(); err == nil {
			g.top.set(key(pMeta, "clock"), []byte(tsBytes(lastTS)))
			err = s.write(*g.top.muts)
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
		g.top.set(k, b[:])
	}
	return nil
}

// apply validates one transaction against the current state and records
// its changes in c.
func (g *group) apply(c *changes, req *request, ts int64) ([]*store.Resource, error) {
	tx := req.tx
	out := make([]*store.Resource, 0, len(tx.Writes))
	save := g.top
	g.top = c // reads see this request's own earlier writes
	defer func() { g.top = save }()
	for i, w := range tx.Writes {
		res, err := g.applyWrite(c, w, &req.prep[i], ts)
		if err != nil {
			return nil, &store.WriteError{Index: i, Type: w.Type, ID: w.ID, Err: err}
		}
		out = append(out, res)
	}
	for k, v := range tx.KV {
		if v == nil {
			c.del(key(pKV, k))
		} else {
			c.set(key(pKV, k), append([]byte(nil), v...))
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

func (g *group) applyWrite(c *changes, w store.Write, p *prepared, ts int64) (*store.Resource, error) {
	if !isValidType(w.Type) {
		return nil, fmt.Errorf("resource type %q: %w", w.Type, store.ErrInvalid)
	}
	w.ID = p.id
	if !isValidID(w.ID) {
		return nil, fmt.Errorf("id %q: %w", w.ID, store.ErrInvalid)
	}
	if p.err != nil {
		return nil, p.err
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
		if w.SkipUnchanged && live && cur.hash == p.hash {
			return cur.resource(w.Type, w.ID), nil
		}
		ver := curVer + 1
		buf, err := withMeta(p.canon, p.hasMeta, ver, ts, headerLen)
		if err != nil {
			return nil, err
		}
		next = &record{version: ver, ts: ts, hash: p.hash, body: buf[headerLen:], encoded: buf}
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
	// the new ones. The old keys prepared by the caller are valid when the
	// version it saw is still current.
	var oldKeys, newKeys [][]byte
	if live {
		if p.oldKeyed && p.oldVer == cur.version {
			oldKeys = p.oldKeys
		} else {
			oldKeys = g.s.ix.keys(w.Type, w.ID, cur.body)
		}
		c.del(lastUpdatedKey(w.Type, w.ID, cur.ts))
	}
	if !next.deleted {
		if !p.keyed {
			p.newKeys, p.keyed = g.s.ix.keysOf(w.Type, w.ID, p.canon, p.valid), true
		}
		newKeys = p.newKeys
		c.set(lastUpdatedKey(w.Type, w.ID, ts), nil)
	}
	i, j := 0, 0
	for i < len(oldKeys) || j < len(newKeys) {
		cmp := 0
		switch {
		case j == len(newKeys):
			cmp = -1
		case i == len(oldKeys):
			cmp = 1
		default:
			cmp = bytes.Compare(oldKeys[i], newKeys[j])
		}
		switch {
		case cmp < 0:
			c.del(oldKeys[i])
			i++
		case cmp > 0:
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
	c.setCurrent(ck, enc)
	if cur != nil {
		// The superseded version moves to history as it was stored; the
		// new one is kept only in its current record until it is
		// superseded in turn, so write-once resources are stored once.
		c.set(historyKey(w.Type, w.ID, cur.version), v)
	}
	c.set(typeHistKey(w.Type, ts, w.ID, next.version), nil)
	c.set(sysHistKey(ts, w.Type, w.ID, next.version), nil)
	res := next.resource(w.Type, w.ID)
	res.Created = !live && !next.deleted
	return res, nil
}

// withMeta sets meta.versionId and meta.lastUpdated on a canonical body.
// hasMeta is canonical's report of whether canon has a meta element. The
// result starts with reserve zero bytes (room for the record header, so
// the body is not copied again to encode the record).
func withMeta(canon []byte, hasMeta bool, ver uint64, ts int64, reserve int) ([]byte, error) {
	if !hasMeta {
		// Common case: append a meta element before the closing brace.
		end := bytes.LastIndexByte(canon, '}')
		inner := bytes.TrimSpace(canon[1:end])
		out := make([]byte, reserve, reserve+len(canon)+80)
		out = append(out, canon[:end]...)
		if len(inner) > 0 {
			out = append(out, ',')
		}
		out = append(out, `"meta":{"versionId":"`...)
		out = strconv.AppendUint(out, ver, 10)
		out = append(out, `","lastUpdated":"`...)
		out = append(out, formatInstant(ts)...)
		out = append(out, `"}}`...)
		return out, nil
	}
	body, err := sjson.SetBytes(canon, "meta.versionId", strconv.FormatUint(ver, 10))
	if err == nil {
		body, err = sjson.SetBytes(body, "meta.lastUpdated", formatInstant(ts))
	}
	if err != nil {
		return nil, fmt.Errorf("setting meta: %v: %w", err, store.ErrInvalid)
	}
	return append(make([]byte, reserve, reserve+len(body)), body...), nil
}

// canonical checks a resource body and returns it with id set and
// meta.versionId/meta.lastUpdated removed; other bytes are untouched.
//
// hasMeta reports whether the result still has a meta element, which
// tells withMeta whether it can simply append one. valid reports that out
// is known to be valid JSON without checking it again: body was checked,
// and only appendID (a valid id into a valid object) changed it, or
// nothing did.
func canonical(typ, id string, body []byte) (out []byte, hasMeta, valid bool, err error) {
	if !gjson.ValidBytes(body) {
		return nil, false, false, fmt.Errorf("body is not valid JSON: %w", store.ErrInvalid)
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, false, false, fmt.Errorf("body is not a JSON object: %w", store.ErrInvalid)
	}
	// One pass over the top-level elements (first occurrence wins, as
	// with gjson's Get) instead of a lookup per element.
	var rt, idv, meta gjson.Result
	var seen uint8
	root.ForEach(func(k, v gjson.Result) bool {
		switch {
		case k.Str == "resourceType" && seen&1 == 0:
			rt, seen = v, seen|1
		case k.Str == "id" && seen&2 == 0:
			idv, seen = v, seen|2
		case k.Str == "meta" && seen&4 == 0:
			meta, seen = v, seen|4
		}
		return seen != 7
	})
	if rt.String() != typ {
		return nil, false, false, fmt.Errorf("resourceType %q does not match %s: %w", rt.String(), typ, store.ErrInvalid)
	}
	out, valid = body, true
	switch {
	case idv.Type == gjson.String && idv.Str == id:
	case !idv.Exists() && appendableObject(body):
		out = appendID(body, id)
	default:
		valid = false // sjson's output is not re-checked here
		if out, err = sjson.SetBytes(out, "id", id); err != nil {
			return nil, false, false, fmt.Errorf("setting id: %v: %w", err, store.ErrInvalid)
		}
	}
	if !meta.Exists() {
		if &out[0] == &body[0] {
			out = append([]byte(nil), out...) // never alias the caller's slice
		}
		return out, false, valid, nil
	}
	if !meta.IsObject() {
		return nil, false, false, fmt.Errorf("meta is not an object: %w", store.ErrInvalid)
	}
	for _, p := range []string{"meta.versionId", "meta.lastUpdated"} {
		if gjson.GetBytes(out, p).Exists() {
			valid = false
			if out, err = sjson.DeleteBytes(out, p); err != nil {
				return nil, false, false, fmt.Errorf("clearing %s: %v: %w", p, err, store.ErrInvalid)
			}
		}
	}
	// An emptied meta goes too (FHIR forbids empty elements), so a stored
	// body fed back in hashes like the original.
	hasMeta = true
	if m := gjson.GetBytes(out, "meta"); m.IsObject() && strings.TrimSpace(m.Raw[1:len(m.Raw)-1]) == "" {
		valid = false
		if out, err = sjson.DeleteBytes(out, "meta"); err != nil {
			return nil, false, false, fmt.Errorf("clearing meta: %v: %w", err, store.ErrInvalid)
		}
		hasMeta = false
	}
	if &out[0] == &body[0] {
		out = append([]byte(nil), out...) // never alias the caller's slice
	}
	return out, hasMeta, valid, nil
}

// appendableObject reports whether appendID gives the bytes sjson would:
// the body is exactly an object with no whitespace before its closing
// brace.
func appendableObject(body []byte) bool {
	n := len(body)
	if n < 2 || body[0] != '{' || body[n-1] != '}' {
		return false
	}
	switch body[n-2] {
	case ' ', '\t', '\n', '\r':
		return false
	}
	return true
}

// appendID adds "id" as the last element of an object that has none, as
// sjson.SetBytes does, without re-parsing it (ids need no escaping).
func appendID(body []byte, id string) []byte {
	out := make([]byte, 0, len(body)+len(id)+8)
	out = append(out, body[:len(body)-1]...)
	if body[len(body)-2] != '{' {
		out = append(out, ',')
	}
	out = append(out, `"id":"`...)
	out = append(out, id...)
	return append(out, `"}`...)
}

// write makes a group's changes durable: one badger transaction when they
// fit, else the staged path. Later mutations of a key win.
func (s *Store) write(muts []mutation) error {
	size := int64(0)
	for _, m := range muts {
		size += int64(len(m.key)+len(m.val)) + 32
	}
	if size < s.maxBatch*8/10 && int64(len(muts)) < s.maxCount*8/10 {
		txn := s.db.NewTransaction(true)
		defer txn.Discard()
		if err := setAll(txn, muts); err != nil {
			return fmt.Errorf("badgerstore: %w", err)
		}
		v := s.publishView()
		defer s.retireView(v)
		if err := txn.Commit(); err != nil {
			return fmt.Errorf("badgerstore: commit: %w", err)
		}
		return nil
	}
	return s.writeStaged(muts)
}
