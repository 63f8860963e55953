// Package ingest is the parallel validating loader behind `equitas import`
// and the server's bulk $import: it reads FHIR resources from NDJSON files
// and Bundles, validates each one on every core, and commits the valid ones
// in batches through store.Store.Commit with SkipUnchanged, so loading the
// same data twice writes no new versions.
//
// Each resource is its own unit: an invalid line is reported with its file
// and line number and skipped, and a line is either stored whole or not at
// all. Bundle entries are units too: a transaction Bundle is loaded entry
// by entry (bulk semantics), not atomically; its urn:uuid references
// between entries are rewritten to the entries' Type/id. Memory stays flat
// in the size of the input: lines stream through bounded queues and at
// most two batches are held for commit.
package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/store"
)

// Validator validates one resource and returns its type and id; the
// fhir/validate package's Validator is the production implementation.
type Validator interface {
	Resource(body []byte) (resourceType, id string, err error)
}

// Options tune a Loader; the zero value is sensible.
type Options struct {
	// Workers validating in parallel (default GOMAXPROCS).
	Workers int
	// BatchSize is the number of resources per store commit (default 500).
	BatchSize int
	// MaxLineBytes bounds one resource (default 64 MiB); longer lines are
	// reported and skipped.
	MaxLineBytes int
	// MaxErrors bounds the failures kept in Summary.Errors (default 1000);
	// all are counted and all are passed to OnError.
	MaxErrors int
	// OnError, when set, is called for every failed resource: resources
	// that fail validation in input order, those the store rejects when
	// their batch is committed. Calls never overlap.
	OnError func(*LineError)
	// Progress, when set, is called after every commit.
	Progress func(Progress)
	// OnWritten, when set, is called after every commit with the new
	// versions it stored (unchanged resources are left out), so a caller
	// can keep track of what a load changed, e.g. to undo a stopped bulk
	// submission. Calls never overlap. An error stops the load; the batch
	// it reports stays committed.
	OnWritten func([]Written) error
	// ValidateUnchanged validates every resource. By default a resource
	// whose body equals its stored current version (apart from
	// meta.versionId and meta.lastUpdated) skips the validator: it is
	// content the store already accepted, and re-imports become cheap.
	ValidateUnchanged bool
}

// Written is one new version a load stored.
type Written struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	// Created is true when the resource did not exist (or was deleted)
	// before this version.
	Created bool `json:"created,omitempty"`
	// Deleted is true for a tombstone a Bundle DELETE entry wrote.
	Deleted bool `json:"deleted,omitempty"`
}

// Progress is a snapshot of a running load.
type Progress struct {
	Bytes, TotalBytes int64 // input read so far and in total (0 = unknown)
	Resources         int64 // resources committed or skipped as unchanged
	Failed            int64
}

// LineError is one resource that was not loaded.
type LineError struct {
	File string
	// Line is the 1-based line of an NDJSON source; 0 for JSON sources.
	Line int64
	// Entry is the Bundle entry index, -1 when the resource is not a
	// Bundle entry.
	Entry int
	Err   error
}

func (e *LineError) Error() string {
	switch {
	case e.Entry >= 0:
		return fmt.Sprintf("%s: Bundle.entry[%d]: %v", e.File, e.Entry, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	default:
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
}

func (e *LineError) Unwrap() error { return e.Err }

// Summary is the result of a load.
type Summary struct {
	Sources   int              `json:"sources"`
	Read      int64            `json:"read"`      // resources read (blank lines are not counted)
	Written   map[string]int64 `json:"written"`   // new versions, by type
	Unchanged map[string]int64 `json:"unchanged"` // equal to the stored version, by type
	Deleted   map[string]int64 `json:"deleted"`   // Bundle DELETE entries applied, by type
	Failed    int64            `json:"failed"`
	Errors    []*LineError     `json:"-"`
	Bytes     int64            `json:"bytes"`
	Elapsed   time.Duration    `json:"elapsed"`
}

// Loaded is the number of resources stored or found unchanged.
func (s *Summary) Loaded() int64 {
	var n int64
	for _, m := range []map[string]int64{s.Written, s.Unchanged, s.Deleted} {
		for _, c := range m {
			n += c
		}
	}
	return n
}

// Errors a LineError wraps (besides validation and store errors).
var (
	ErrNoID        = errors.New("resource has no id")
	ErrTooLong     = errors.New("resource exceeds the maximum size")
	ErrWrongType   = errors.New("resource type does not match the source")
	ErrBadEntry    = errors.New("unusable Bundle entry")
	ErrIDsMismatch = errors.New("resource id differs from the entry's fullUrl or request")
)

// Loader loads sources into a store.
type Loader struct {
	st   store.Store
	v    Validator
	opts Options
}

// New returns a Loader writing to st and validating with v.
func New(st store.Store, v Validator, opts Options) *Loader {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = 64 << 20
	}
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = 1000
	}
	return &Loader{st: st, v: v, opts: opts}
}

// LoadPaths loads files and directories (see Files).
func (l *Loader) LoadPaths(ctx context.Context, paths ...string) (*Summary, error) {
	srcs, err := Files(paths...)
	if err != nil {
		return nil, err
	}
	return l.Load(ctx, srcs...)
}

// item is one resource on its way from the reader through a validator to
// the committer.
type item struct {
	seq   int64
	src   *Source
	line  int64
	entry int
	body  []byte
	op    store.Op
	typ   string
	id    string
	err   error
}

func (it *item) fail(err error) *LineError {
	le := &LineError{File: it.src.Name, Line: it.line, Entry: it.entry, Err: err}
	if it.entry >= 0 {
		le.Line = 0
	}
	return le
}

// Load reads every source and loads its resources. It returns an error
// only when loading could not go on (unreadable source, store failure,
// cancelled context); failed resources are in the Summary. Resources
// committed before such an error stay committed.
func (l *Loader) Load(ctx context.Context, srcs ...Source) (*Summary, error) {
	start := time.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var total int64
	for _, s := range srcs {
		total += s.Size
	}
	c := newCommitter(l, &Summary{Sources: len(srcs), Written: map[string]int64{}, Unchanged: map[string]int64{}, Deleted: map[string]int64{}}, total)

	// The queues hold about a batch, so workers keep validating while the
	// committer waits for a commit.
	work := make(chan *item, max(l.opts.Workers*64, l.opts.BatchSize/2))
	done := make(chan *item, max(l.opts.Workers*64, l.opts.BatchSize))
	var readErr error
	go func() {
		defer close(work)
		readErr = l.read(ctx, srcs, work, &c.bytes)
		if readErr != nil {
			cancel(readErr)
		}
	}()
	var wg sync.WaitGroup
	for range l.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				l.validate(ctx, it)
				done <- it
			}
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()

	commitErr := c.run(ctx, done)
	if commitErr != nil {
		cancel(commitErr)
		for range done { // let the reader and workers finish
		}
	}
	c.sum.Bytes = c.bytes.Load()
	c.sum.Elapsed = time.Since(start)
	switch {
	case readErr != nil:
		return c.sum, readErr
	case commitErr != nil:
		return c.sum, commitErr
	}
	return c.sum, context.Cause(ctx)
}

func (l *Loader) validate(ctx context.Context, it *item) {
	if it.err != nil || it.op != store.OpPut {
		return
	}
	if !l.opts.ValidateUnchanged && it.id == "" && it.typ == "" && l.stored(ctx, it) {
		return
	}
	typ, id, err := l.v.Resource(it.body)
	switch {
	case err != nil:
		it.err = err
	case it.src.Type != "" && typ != it.src.Type:
		it.err = fmt.Errorf("%w: %s in a %s source", ErrWrongType, typ, it.src.Type)
	case it.typ != "" && typ != it.typ:
		it.err = fmt.Errorf("%w: resource is %s, entry names %s", ErrIDsMismatch, typ, it.typ)
	case it.id != "" && id != "" && id != it.id:
		it.err = fmt.Errorf("%w: %s vs %s", ErrIDsMismatch, id, it.id)
	case id == "" && it.id == "":
		it.err = ErrNoID
	default:
		it.typ = typ
		if it.id == "" {
			it.id = id
		}
	}
}

// stored reports whether the item's body is the stored current version
// of its resource; it then still goes to the store (SkipUnchanged makes
// that a no-op), so a changed earlier line of the same load cannot be
// overtaken, but it skips the validator.
func (l *Loader) stored(ctx context.Context, it *item) bool {
	r := gjson.GetManyBytes(it.body, "resourceType", "id")
	typ, id := r[0].String(), r[1].String()
	if typ == "" || id == "" || r[1].Type != gjson.String || (it.src.Type != "" && typ != it.src.Type) {
		return false
	}
	cur, err := l.st.Read(ctx, typ, id)
	if err != nil || cur.Body == nil || !sameContent(cur.Body, it.body) {
		return false
	}
	it.typ, it.id = typ, id
	return true
}

// sameContent compares a stored body with an input line, ignoring the
// meta elements the store sets.
func sameContent(stored, line []byte) bool {
	b := stored
	var err error
	for _, p := range []string{"meta.versionId", "meta.lastUpdated"} {
		if b, err = sjson.DeleteBytes(b, p); err != nil {
			return false
		}
	}
	if m := gjson.GetBytes(b, "meta"); m.IsObject() && len(bytes.TrimSpace([]byte(m.Raw[1:len(m.Raw)-1]))) == 0 {
		if b, err = sjson.DeleteBytes(b, "meta"); err != nil {
			return false
		}
	}
	return bytes.Equal(b, bytes.TrimSpace(line))
}

// committer restores input order (workers finish out of order; the last
// of two lines with the same id must win) and cuts batches. Batches are
// committed one after the other by a separate goroutine, so validation
// goes on while a batch is being written and synced.
type committer struct {
	l     *Loader
	batch []*item
	keys  map[string]bool // type/id in the batch
	bytes atomic.Int64
	total int64

	commits chan []*item
	wg      sync.WaitGroup

	mu    sync.Mutex // guards sum and fatal, shared with the commit goroutine
	sum   *Summary
	fatal error
	cbMu  sync.Mutex // serializes OnError calls
}

func newCommitter(l *Loader, sum *Summary, total int64) *committer {
	c := &committer{l: l, sum: sum, keys: map[string]bool{}, total: total, commits: make(chan []*item, 1)}
	return c
}

func (c *committer) run(ctx context.Context, done <-chan *item) error {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for b := range c.commits {
			if c.err() != nil {
				continue
			}
			if err := c.commit(ctx, b); err != nil {
				c.mu.Lock()
				c.fatal = err
				c.mu.Unlock()
			}
		}
	}()
	err := c.order(ctx, done)
	if err == nil {
		c.submit(ctx)
	}
	close(c.commits)
	c.wg.Wait()
	if err != nil {
		return err
	}
	return c.err()
}

func (c *committer) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal
}

func (c *committer) order(ctx context.Context, done <-chan *item) error {
	pending := map[int64]*item{}
	var next int64
	for it := range done {
		pending[it.seq] = it
		for {
			x, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if err := c.add(ctx, x); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *committer) add(ctx context.Context, it *item) error {
	c.mu.Lock()
	c.sum.Read++
	c.mu.Unlock()
	if it.err != nil {
		c.failed(it.fail(it.err))
		return nil
	}
	key := it.typ + "/" + it.id
	if c.keys[key] {
		// Two versions of one resource in a batch: commit the first so
		// the second becomes a new version on top of it.
		c.submit(ctx)
	}
	c.keys[key] = true
	c.batch = append(c.batch, it)
	if len(c.batch) >= c.l.opts.BatchSize {
		c.submit(ctx)
	}
	return c.err()
}

// submit hands the batch to the commit goroutine; it blocks while another
// batch is waiting, which bounds memory to about two batches.
func (c *committer) submit(ctx context.Context) {
	if len(c.batch) == 0 {
		return
	}
	select {
	case c.commits <- c.batch:
	case <-ctx.Done():
	}
	c.batch = make([]*item, 0, c.l.opts.BatchSize)
	clear(c.keys)
}

func (c *committer) failed(le *LineError) {
	c.mu.Lock()
	c.sum.Failed++
	if len(c.sum.Errors) < c.l.opts.MaxErrors {
		c.sum.Errors = append(c.sum.Errors, le)
	}
	c.mu.Unlock()
	if c.l.opts.OnError != nil {
		c.cbMu.Lock()
		c.l.opts.OnError(le)
		c.cbMu.Unlock()
	}
}

// commit writes one batch. A write the store rejects (invalid, version
// conflict) is reported and the rest committed again without it, so one
// bad resource never keeps its batch out.
func (c *committer) commit(ctx context.Context, batch []*item) error {
	for len(batch) > 0 {
		writes := make([]store.Write, len(batch))
		for i, it := range batch {
			writes[i] = store.Write{Op: it.op, Type: it.typ, ID: it.id, Body: it.body, SkipUnchanged: true}
		}
		before := time.Now().Truncate(time.Microsecond)
		res, err := c.l.st.Commit(ctx, store.Tx{Writes: writes})
		var we *store.WriteError
		if errors.As(err, &we) && we.Index >= 0 && we.Index < len(batch) &&
			(errors.Is(we.Err, store.ErrInvalid) || errors.Is(we.Err, store.ErrVersionConflict)) {
			c.failed(batch[we.Index].fail(we.Err))
			batch = append(batch[:we.Index:we.Index], batch[we.Index+1:]...)
			continue
		}
		if err != nil {
			return fmt.Errorf("ingest: commit: %w", err)
		}
		written := c.count(batch, res, before)
		if c.l.opts.OnWritten != nil && len(written) > 0 {
			if err := c.l.opts.OnWritten(written); err != nil {
				return fmt.Errorf("ingest: after commit: %w", err)
			}
		}
		break
	}
	if c.l.opts.Progress != nil {
		c.mu.Lock()
		p := Progress{Bytes: c.bytes.Load(), TotalBytes: c.total, Resources: c.sum.Loaded(), Failed: c.sum.Failed}
		c.mu.Unlock()
		c.l.opts.Progress(p)
	}
	return nil
}

// count tells written from unchanged resources. The store stamps every
// write of one commit with the commit's lastUpdated and returns a skipped
// unchanged write as its stored, older version. It returns the new
// versions when Options.OnWritten wants them.
func (c *committer) count(batch []*item, res []*store.Resource, before time.Time) []Written {
	var commitTS time.Time
	for _, r := range res {
		if r != nil && r.LastUpdated.After(commitTS) {
			commitTS = r.LastUpdated
		}
	}
	var written []Written
	track := c.l.opts.OnWritten != nil
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range res {
		it := batch[i]
		switch {
		case it.op == store.OpDelete:
			c.sum.Deleted[it.typ]++
			if track && r != nil {
				written = append(written, Written{Type: it.typ, ID: it.id, Version: r.Version, Deleted: true})
			}
		case r == nil || commitTS.Before(before) || !r.LastUpdated.Equal(commitTS):
			c.sum.Unchanged[it.typ]++
		default:
			c.sum.Written[it.typ]++
			if track {
				written = append(written, Written{Type: it.typ, ID: it.id, Version: r.Version, Created: r.Created})
			}
		}
	}
	return written
}

// read streams every source into work, numbering items in input order.
func (l *Loader) read(ctx context.Context, srcs []Source, work chan<- *item, counter *atomic.Int64) error {
	var seq int64
	send := func(it *item) error {
		it.seq = seq
		seq++
		select {
		case work <- it:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	for i := range srcs {
		src := &srcs[i]
		var err error
		switch src.Format {
		case JSON:
			err = l.readJSON(src, counter, send)
		default:
			err = l.readNDJSON(src, counter, send)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *Loader) readNDJSON(src *Source, counter *atomic.Int64, send func(*item) error) error {
	rc, err := src.Open()
	if err != nil {
		return fmt.Errorf("ingest: open %s: %w", src.Name, err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(&countingReader{r: rc, n: counter}, 1<<20)
	for lineNo := int64(1); ; lineNo++ {
		line, tooLong, rerr := readLine(br, l.opts.MaxLineBytes)
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("ingest: read %s:%d: %w", src.Name, lineNo, rerr)
		}
		switch {
		case tooLong:
			if err := send(&item{src: src, line: lineNo, entry: -1, err: ErrTooLong}); err != nil {
				return err
			}
		case len(bytes.TrimSpace(line)) > 0:
			if err := send(&item{src: src, line: lineNo, entry: -1, body: line, op: store.OpPut}); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

// readLine returns the next line without its line ending. A line longer
// than max is consumed and reported as too long.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max+2 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		return line, tooLong, err
	}
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
