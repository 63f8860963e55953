// Package job runs durable asynchronous jobs for the FHIR asynchronous
// request pattern ($export, $import, $bulk-submit-status, population
// $evaluate-measure, attribution runs).
//
// A job's record lives in the store's KV space, so a restarted server knows
// every job it accepted: jobs that were running when the process stopped are
// run again from the start (runners write into a fresh directory, so no
// client ever sees a half-written file), finished jobs keep their manifest
// until they expire, and expired jobs are deleted with their files.
package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/equitas/equitas/store"
)

// State is where a job is in its life.
type State string

const (
	Accepted   State = "accepted"
	Running    State = "in-progress"
	Completed  State = "completed"
	Failed     State = "failed"
	Cancelled  State = "cancelled"
	keyPrefix        = "bulk/job/"
	defaultTTL       = 24 * time.Hour
)

// Errors callers test with errors.Is.
var (
	ErrNotFound    = errors.New("job: not found")
	ErrTooManyJobs = errors.New("job: too many jobs in progress for this client")
	ErrPollTooSoon = errors.New("job: polled too soon")
	ErrNoRunner    = errors.New("job: no runner for kind")
)

// Record is the durable state of one job.
type Record struct {
	ID              string          `json:"id"`
	Kind            string          `json:"kind"`
	Owner           string          `json:"owner"`   // client id that started it
	Request         string          `json:"request"` // the kick-off URL
	State           State           `json:"state"`
	Progress        string          `json:"progress,omitempty"`
	Params          json.RawMessage `json:"params,omitempty"`
	Result          json.RawMessage `json:"result,omitempty"` // the manifest when completed
	Error           string          `json:"error,omitempty"`
	Attempts        int             `json:"attempts"`
	CreatedAt       time.Time       `json:"createdAt"`
	UpdatedAt       time.Time       `json:"updatedAt"`
	TransactionTime time.Time       `json:"transactionTime,omitzero"`
	ExpiresAt       time.Time       `json:"expiresAt,omitzero"`
	LastPoll        time.Time       `json:"lastPoll,omitzero"`
}

// Done reports whether the job reached a final state.
func (r *Record) Done() bool {
	return r.State == Completed || r.State == Failed || r.State == Cancelled
}

// Run does a job's work. dir is an empty directory owned by this attempt;
// progress may be called at any time with a short human-readable status.
// The returned bytes become Record.Result.
type Run func(ctx context.Context, rec *Record, dir string, progress func(string)) ([]byte, error)

// Options tune a Manager.
type Options struct {
	Dir           string        // where job directories live
	TTL           time.Duration // how long finished jobs and their files are kept
	MinPoll       time.Duration // polls closer together than this get ErrPollTooSoon
	MaxPerOwner   int           // concurrent unfinished jobs per owner (0 = unlimited)
	Workers       int           // jobs run at once
	MaxAttempts   int           // restarts after a crash before the job is failed
	Logger        *slog.Logger
	JanitorPeriod time.Duration
	now           func() time.Time
}

// Manager accepts, runs, tracks and expires jobs.
type Manager struct {
	kv      store.KV
	opts    Options
	runners map[string]Run
	queue   chan string
	mu      sync.Mutex
	cancels map[string]context.CancelFunc
	running map[string]chan struct{} // closed when the job's runner returns
	wg      sync.WaitGroup
	log     *slog.Logger
}

// NewManager returns a manager over kv; register runners, then Start it.
func NewManager(kv store.KV, opts Options) (*Manager, error) {
	if opts.Dir == "" {
		return nil, errors.New("job: Options.Dir is required")
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("job: %w", err)
	}
	if opts.TTL <= 0 {
		opts.TTL = defaultTTL
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	if opts.JanitorPeriod <= 0 {
		opts.JanitorPeriod = 10 * time.Minute
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Manager{
		kv: kv, opts: opts, runners: map[string]Run{}, queue: make(chan string, 1024),
		cancels: map[string]context.CancelFunc{}, running: map[string]chan struct{}{}, log: log.With("component", "jobs"),
	}, nil
}

// Register sets the runner for a kind of job. Call before Start.
func (m *Manager) Register(kind string, run Run) { m.runners[kind] = run }

// Start resumes unfinished jobs, starts the workers and the janitor. They
// stop when ctx is done; Wait waits for them.
func (m *Manager) Start(ctx context.Context) error {
	var resume []string
	err := m.kv.Scan(ctx, keyPrefix, func(_ string, v []byte) error {
		var rec Record
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil // a record we cannot read is left for the janitor
		}
		if !rec.Done() {
			resume = append(resume, rec.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("job: resume scan: %w", err)
	}
	for i := 0; i < m.opts.Workers; i++ {
		m.wg.Add(1)
		go m.worker(ctx)
	}
	m.wg.Add(1)
	go m.janitor(ctx)
	for _, id := range resume {
		m.log.Info("resuming job", "job", id)
		m.enqueue(id)
	}
	return nil
}

// Wait blocks until the workers have stopped.
func (m *Manager) Wait() { m.wg.Wait() }

func (m *Manager) enqueue(id string) {
	select {
	case m.queue <- id:
	default:
		// The queue is full: run the job on its own goroutine rather than
		// blocking a kick-off request.
		go func() { m.queue <- id }()
	}
}

// Submit records a new job and queues it.
func (m *Manager) Submit(ctx context.Context, kind, owner, request string, params any) (*Record, error) {
	if _, ok := m.runners[kind]; !ok {
		return nil, fmt.Errorf("%w %q", ErrNoRunner, kind)
	}
	if m.opts.MaxPerOwner > 0 {
		n := 0
		err := m.kv.Scan(ctx, keyPrefix, func(_ string, v []byte) error {
			var rec Record
			if json.Unmarshal(v, &rec) == nil && rec.Owner == owner && rec.Kind == kind && !rec.Done() {
				n++
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("job: %w", err)
		}
		if n >= m.opts.MaxPerOwner {
			return nil, ErrTooManyJobs
		}
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("job: params: %w", err)
	}
	now := m.opts.now().UTC()
	rec := &Record{ID: newID(), Kind: kind, Owner: owner, Request: request, State: Accepted,
		Params: raw, CreatedAt: now, UpdatedAt: now}
	if err := m.put(ctx, rec); err != nil {
		return nil, err
	}
	m.enqueue(rec.ID)
	return rec, nil
}

// Get returns a job's record.
func (m *Manager) Get(ctx context.Context, id string) (*Record, error) {
	v, err := m.kv.Get(ctx, keyPrefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("job: %w", err)
	}
	var rec Record
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("job: record %s: %w", id, err)
	}
	return &rec, nil
}

// Poll returns the record for a status request, enforcing the minimum poll
// interval for unfinished jobs (ErrPollTooSoon carries the record too).
func (m *Manager) Poll(ctx context.Context, id string) (*Record, error) {
	rec, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Done() || m.opts.MinPoll <= 0 {
		return rec, nil
	}
	now := m.opts.now().UTC()
	if !rec.LastPoll.IsZero() && now.Sub(rec.LastPoll) < m.opts.MinPoll {
		return rec, ErrPollTooSoon
	}
	// Only the poll time changes here; update re-reads under the lock so
	// a concurrent worker update is never rolled back.
	var cur *Record
	err = m.update(ctx, id, func(r *Record) { r.LastPoll = now; cur = r })
	if err != nil {
		return nil, err
	}
	return cur, nil
}

// Cancel stops a job (if running) and deletes it and its files; later Gets
// return ErrNotFound.
func (m *Manager) Cancel(ctx context.Context, id string) error {
	if _, err := m.Get(ctx, id); err != nil {
		return err
	}
	// Holding the lock while removing keeps a concurrent update (which
	// re-reads and writes under the same lock) from resurrecting the record.
	m.mu.Lock()
	defer m.mu.Unlock()
	c, running := m.cancels[id]
	if running {
		c()
	}
	err := m.remove(ctx, id)
	var pe *os.PathError
	if running && errors.As(err, &pe) {
		// The runner may still be writing into the directory as it notices
		// the cancel; it removes the directory itself once it returns, and
		// the record is already gone, so the cancel has taken effect.
		return nil
	}
	return err
}

// Stop is Cancel that also waits until the job's runner has returned, so
// the job changes nothing after Stop returns (a runner only ends its work
// at its next check of the context, e.g. after the commit in flight).
func (m *Manager) Stop(ctx context.Context, id string) error {
	m.mu.Lock()
	finished := m.running[id]
	m.mu.Unlock()
	if err := m.Cancel(ctx, id); err != nil {
		return err
	}
	if finished == nil {
		return nil
	}
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("job: waiting for %s to stop: %w", id, context.Cause(ctx))
	}
}

// Dir returns the directory holding a job's files.
func (m *Manager) Dir(id string) string { return filepath.Join(m.opts.Dir, id) }

// MinPoll is the advertised Retry-After.
func (m *Manager) MinPoll() time.Duration { return m.opts.MinPoll }

// TTL is how long finished jobs are kept.
func (m *Manager) TTL() time.Duration { return m.opts.TTL }

func (m *Manager) remove(ctx context.Context, id string) error {
	if err := m.kv.Delete(ctx, keyPrefix+id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("job: delete %s: %w", id, err)
	}
	if err := os.RemoveAll(m.Dir(id)); err != nil {
		return fmt.Errorf("job: remove files of %s: %w", id, err)
	}
	return nil
}

func (m *Manager) put(ctx context.Context, rec *Record) error {
	rec.UpdatedAt = m.opts.now().UTC()
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("job: encode: %w", err)
	}
	if err := m.kv.Put(ctx, keyPrefix+rec.ID, v); err != nil {
		return fmt.Errorf("job: save %s: %w", rec.ID, err)
	}
	return nil
}

// update re-reads the record, applies fn and saves it, unless the job was
// cancelled (deleted) meanwhile.
func (m *Manager) update(ctx context.Context, id string, fn func(*Record)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	fn(rec)
	return m.put(ctx, rec)
}

func (m *Manager) worker(ctx context.Context) {
	defer m.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-m.queue:
			m.runOne(ctx, id)
		}
	}
}

func (m *Manager) runOne(ctx context.Context, id string) {
	rec, err := m.Get(ctx, id)
	if err != nil || rec.Done() {
		return
	}
	run := m.runners[rec.Kind]
	if run == nil || rec.Attempts >= m.opts.MaxAttempts {
		reason := "no runner for job kind " + rec.Kind
		if run != nil {
			reason = fmt.Sprintf("job failed after %d attempts", rec.Attempts)
		}
		_ = m.update(ctx, id, func(r *Record) { r.State, r.Error = Failed, reason; r.ExpiresAt = m.opts.now().UTC().Add(m.opts.TTL) })
		return
	}
	jctx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	m.cancels[id] = cancel
	finished := make(chan struct{})
	m.running[id] = finished
	m.mu.Unlock()
	defer func() {
		cancel()
		m.mu.Lock()
		delete(m.cancels, id)
		delete(m.running, id)
		m.mu.Unlock()
		close(finished)
	}()

	dir := m.Dir(id)
	// A previous attempt may have left partial files: start clean.
	if err := os.RemoveAll(dir); err == nil {
		err = os.MkdirAll(dir, 0o750)
	}
	if err := m.update(ctx, id, func(r *Record) { r.State = Running; r.Attempts++; r.Progress = "started" }); err != nil {
		return
	}
	rec.Attempts++
	progress := func(p string) {
		if len(p) > 99 {
			p = p[:99]
		}
		_ = m.update(jctx, id, func(r *Record) { r.Progress = p })
	}
	started := time.Now()
	result, runErr := m.safeRun(jctx, run, rec, dir, progress)
	if ctx.Err() != nil {
		// Shutting down: leave the job unfinished so the next start resumes it.
		return
	}
	if jctx.Err() != nil {
		// Cancelled: the record is gone; the runner may have created files
		// after Cancel removed the directory.
		_ = os.RemoveAll(dir)
		return
	}
	err = m.update(ctx, id, func(r *Record) {
		r.ExpiresAt = m.opts.now().UTC().Add(m.opts.TTL)
		r.TransactionTime = rec.TransactionTime
		if runErr != nil {
			r.State, r.Error = Failed, runErr.Error()
			return
		}
		r.State, r.Result, r.Progress = Completed, result, "completed"
	})
	m.log.Info("job finished", "job", id, "kind", rec.Kind, "ok", runErr == nil, "duration", time.Since(started))
	if err != nil && !errors.Is(err, ErrNotFound) {
		m.log.Error("job: saving result", "job", id, "err", err)
	}
}

func (m *Manager) safeRun(ctx context.Context, run Run, rec *Record, dir string, progress func(string)) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("job panicked", "job", rec.ID, "panic", p)
			err = fmt.Errorf("internal error in job %s", rec.ID)
		}
	}()
	return run(ctx, rec, dir, progress)
}

func (m *Manager) janitor(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.JanitorPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := m.Expire(ctx); err != nil {
				m.log.Warn("job janitor", "err", err)
			} else if n > 0 {
				m.log.Info("expired jobs", "count", n)
			}
		}
	}
}

// Expire deletes finished jobs whose time is up, and their files.
func (m *Manager) Expire(ctx context.Context) (int, error) {
	now := m.opts.now()
	var old []string
	err := m.kv.Scan(ctx, keyPrefix, func(_ string, v []byte) error {
		var rec Record
		if json.Unmarshal(v, &rec) == nil && rec.Done() && !rec.ExpiresAt.IsZero() && now.After(rec.ExpiresAt) {
			old = append(old, rec.ID)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range old {
		if err := m.remove(ctx, id); err != nil {
			return 0, err
		}
	}
	return len(old), nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
