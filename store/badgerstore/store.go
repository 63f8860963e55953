// Package badgerstore is the embedded, single-node implementation of
// store.Store on BadgerDB v4.
//
// All writes go through one writer goroutine that groups concurrent
// commits into a single badger transaction and a single fsync (group
// commit), so durability does not cap throughput and conditional writes
// (If-Match) are decided in a total order without badger conflicts. A
// transaction too large for one badger transaction is staged under a
// pending prefix, made durable by a single commit record, and then applied;
// Open finishes or discards staged transactions left by a crash.
package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/equitas/equitas/store"
)

// Options tune the store; the zero value is a durable store with
// settings suited to a few GiB of RAM.
type Options struct {
	Logger *slog.Logger
	// NoSync acknowledges commits before they reach the disk. Only for
	// tests and benchmarks that measure something else.
	NoSync bool
	// MemTableSize is badger's memtable size (default 128 MiB); it also
	// bounds the size of a transaction written in one badger transaction.
	MemTableSize int64
	// NumMemtables is how many memtables badger keeps (default 5); with
	// MemTableSize it bounds the write buffers' memory.
	NumMemtables int
	// BlockCacheSize and IndexCacheSize bound badger's caches (defaults
	// 256 MiB and 128 MiB).
	BlockCacheSize int64
	IndexCacheSize int64
	// GCInterval is how often value-log garbage collection runs (default
	// 10 minutes; negative disables it).
	GCInterval time.Duration
	// MaxGroupBytes bounds how much data one group commit collects from
	// concurrent callers (default: what fits one badger transaction).
	MaxGroupBytes int
	// Now is the clock for lastUpdated (default time.Now).
	Now func() time.Time
}

// Store is a store.Store on badger.
type Store struct {
	db   *badger.DB
	opts Options
	log  *slog.Logger
	ix   *indexer

	reqs    chan *request
	quit    chan struct{}
	stopped chan struct{}
	closed  atomic.Bool
	closeMu sync.Mutex
	bg      sync.WaitGroup // background goroutines (value-log GC)

	// applyGate keeps readers from starting while a staged transaction is
	// being applied in several badger transactions: they see all of it or
	// none of it.
	applyGate sync.RWMutex
	// clockMu orders snapshot times against commit timestamps: the writer
	// holds it from choosing timestamps to publishing the commit.
	clockMu sync.Mutex
	// viewMu guards preCommit, the view readers share while the writer's
	// commit is in flight (see readTxn).
	viewMu    sync.Mutex
	preCommit *sharedView
	lastTS    int64 // last committed lastUpdated (µs)
	floorTS   int64 // highest time handed out as a snapshot time
	maxBatch  int64
	maxCount  int64
	txCounter atomic.Uint64

	// crashAt, set only by tests, stops a staged transaction at a named
	// point ("staged", "committed", "half-applied") as if the process died.
	crashAt string
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir and finishes any
// transaction a crash interrupted.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MemTableSize <= 0 {
		opts.MemTableSize = 128 << 20
	}
	if opts.BlockCacheSize <= 0 {
		opts.BlockCacheSize = 256 << 20
	}
	if opts.IndexCacheSize <= 0 {
		opts.IndexCacheSize = 128 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.GCInterval == 0 {
		opts.GCInterval = 10 * time.Minute
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("badgerstore: %w", err)
	}
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(!opts.NoSync).
		WithDetectConflicts(false). // one writer goroutine
		WithMemTableSize(opts.MemTableSize).
		WithBlockCacheSize(opts.BlockCacheSize).
		WithIndexCacheSize(opts.IndexCacheSize).
		WithNumCompactors(2).
		WithNumVersionsToKeep(1).
		WithLogger(badgerLogger{opts.Logger})
	if opts.NumMemtables > 0 {
		bo = bo.WithNumMemtables(opts.NumMemtables)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: open %s: %w", dir, err)
	}
	s := &Store{
		db:       db,
		opts:     opts,
		log:      opts.Logger,
		ix:       newIndexer(),
		reqs:     make(chan *request, 1024),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
		maxBatch: db.MaxBatchSize(),
		maxCount: db.MaxBatchCount(),
	}
	if s.opts.MaxGroupBytes <= 0 {
		s.opts.MaxGroupBytes = int(s.maxBatch / 2)
	}
	if err := s.recover(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.checkIndexVersion(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.loadClock(); err != nil {
		_ = db.Close()
		return nil, err
	}
	go s.writer()
	if opts.GCInterval > 0 {
		s.bg.Add(1)
		go s.gcLoop(opts.GCInterval)
	}
	return s, nil
}

// gcLoop runs value-log GC until the store closes.
func (s *Store) gcLoop(every time.Duration) {
	defer s.bg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			if err := s.RunGC(); err != nil && !errors.Is(err, store.ErrClosed) {
				s.log.Warn("badgerstore: value-log GC", "err", err)
			}
		}
	}
}

// Close stops the writer (pending commits fail with store.ErrClosed) and
// closes badger; every later call returns store.ErrClosed.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	close(s.quit)
	<-s.stopped
	s.bg.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("badgerstore: close: %w", err)
	}
	return nil
}

// DB exposes the badger handle for maintenance (backup, value-log GC).
func (s *Store) DB() *badger.DB { return s.db }

// RunGC runs badger's value-log garbage collection until it reclaims
// nothing; call it periodically.
func (s *Store) RunGC() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	for !s.closed.Load() {
		err := s.db.RunValueLogGC(0.7)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("badgerstore: gc: %w", err)
		}
	}
	return nil
}

func (s *Store) loadClock() error {
	return s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key(pMeta, "clock"))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("badgerstore: clock: %w", err)
		}
		return item.Value(func(v []byte) error {
			if len(v) == 8 {
				s.lastTS = tsFrom(v)
				s.floorTS = s.lastTS
			}
			return nil
		})
	})
}

// readTxn returns a read-only badger transaction and its release, never
// in the middle of a staged transaction's apply phase.
//
// A new badger transaction waits until every commit already holding a
// commit timestamp is written, fsync included: under a steady stream of
// durable commits every read would stall for one (ADT intake reads a few
// times per message, so its messages would commit one fsync apart however
// many arrive at once). While the writer's commit is in flight, readers
// therefore share the view the writer opened just before it: the state of
// every commit that has returned, which is all a reader may expect to see.
func (s *Store) readTxn() (*badger.Txn, func(), error) {
	if s.closed.Load() {
		return nil, nil, store.ErrClosed
	}
	s.viewMu.Lock()
	if v := s.preCommit; v != nil {
		v.refs++
		s.viewMu.Unlock()
		return v.txn, func() { s.releaseView(v) }, nil
	}
	// Opened under viewMu, so a fresh view either predates the next
	// published commit or is opened after that commit's view was retired:
	// no reader can see a commit and a later reader not see it.
	s.applyGate.RLock()
	txn := s.db.NewTransaction(false)
	s.applyGate.RUnlock()
	s.viewMu.Unlock()
	return txn, txn.Discard, nil
}

// sharedView is a read-only transaction shared by readers while a commit
// is in flight.
type sharedView struct {
	txn  *badger.Txn
	refs int // guarded by Store.viewMu; the writer holds one until the commit is done
}

// publishView opens the view readers share during the commit the writer
// is about to make; no commit is in flight, so opening it does not wait.
func (s *Store) publishView() *sharedView {
	v := &sharedView{txn: s.db.NewTransaction(false), refs: 1}
	s.viewMu.Lock()
	s.preCommit = v
	s.viewMu.Unlock()
	return v
}

// retireView stops handing v out once its commit is done (new readers see
// the commit) and releases the writer's reference.
func (s *Store) retireView(v *sharedView) {
	s.viewMu.Lock()
	s.preCommit = nil
	s.viewMu.Unlock()
	s.releaseView(v)
}

func (s *Store) releaseView(v *sharedView) {
	s.viewMu.Lock()
	v.refs--
	last := v.refs == 0
	s.viewMu.Unlock()
	if last {
		v.txn.Discard()
	}
}

func (s *Store) view(fn func(r *reader) error) error {
	txn, release, err := s.readTxn()
	if err != nil {
		return err
	}
	defer release()
	return fn(&reader{s: s, txn: txn})
}

// Read implements store.Store.
func (s *Store) Read(ctx context.Context, typ, id string) (*store.Resource, error) {
	var res *store.Resource
	err := s.view(func(r *reader) error {
		var err error
		res, err = r.read(ctx, typ, id)
		return err
	})
	return res, err
}

// VRead implements store.Store.
func (s *Store) VRead(ctx context.Context, typ, id string, version uint64) (*store.Resource, error) {
	var res *store.Resource
	err := s.view(func(r *reader) error {
		var err error
		res, err = r.vread(ctx, typ, id, version)
		return err
	})
	return res, err
}

// History implements store.Store.
func (s *Store) History(ctx context.Context, q store.HistoryQuery) ([]*store.Resource, error) {
	var out []*store.Resource
	err := s.view(func(r *reader) error {
		var err error
		out, err = r.history(ctx, q)
		return err
	})
	return out, err
}

// Compartment implements store.Store.
func (s *Store) Compartment(ctx context.Context, patientID string, types []string, fn func(*store.Resource) error) error {
	return s.view(func(r *reader) error { return r.compartment(ctx, patientID, types, fn) })
}

// Scan implements store.Store.
func (s *Store) Scan(ctx context.Context, typ string, since time.Time, fn func(*store.Resource) error) error {
	return s.view(func(r *reader) error { return r.scan(ctx, typ, since, fn) })
}

// Search implements store.Store.
func (s *Store) Search(ctx context.Context, q store.Query) (*store.SearchResult, error) {
	var out *store.SearchResult
	err := s.view(func(r *reader) error {
		var err error
		out, err = r.search(ctx, q)
		return err
	})
	return out, err
}

// Counts implements store.Store.
func (s *Store) Counts(ctx context.Context) (map[string]int64, error) {
	var out map[string]int64
	err := s.view(func(r *reader) error {
		var err error
		out, err = r.counts(ctx)
		return err
	})
	return out, err
}

// Snapshot implements store.Store. The snapshot's time is at or after the
// lastUpdated of everything it shows and before that of anything it does
// not show.
func (s *Store) Snapshot(ctx context.Context) (store.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	// Holding clockMu, no commit is in flight: the view is current.
	txn, release, err := s.readTxn()
	if err != nil {
		return nil, err
	}
	now := s.opts.Now().UnixMicro()
	t := max(now, s.lastTS)
	s.floorTS = max(s.floorTS, t)
	return &snapshot{reader: reader{s: s, txn: txn}, t: time.UnixMicro(t).UTC(), release: release}, nil
}

type snapshot struct {
	reader
	t       time.Time
	release func()
	once    sync.Once
}

func (sn *snapshot) Time() time.Time { return sn.t }

func (sn *snapshot) Read(ctx context.Context, typ, id string) (*store.Resource, error) {
	return sn.read(ctx, typ, id)
}

func (sn *snapshot) Scan(ctx context.Context, typ string, since time.Time, fn func(*store.Resource) error) error {
	return sn.scan(ctx, typ, since, fn)
}

func (sn *snapshot) Compartment(ctx context.Context, patientID string, types []string, fn func(*store.Resource) error) error {
	return sn.compartment(ctx, patientID, types, fn)
}

func (sn *snapshot) Search(ctx context.Context, q store.Query) (*store.SearchResult, error) {
	return sn.search(ctx, q)
}

func (sn *snapshot) Close() { sn.once.Do(sn.release) }

// badgerLogger routes badger's warnings and errors to slog; its info
// output is noise.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn("badger: " + fmt.Sprintf(f, a...)) }
func (b badgerLogger) Infof(string, ...any)        {}
func (b badgerLogger) Debugf(string, ...any)       {}
