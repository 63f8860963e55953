package attribution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/equitas/equitas/store"
)

// ErrNoJob is an unknown attribution job id.
var ErrNoJob = errors.New("attribution: no such attribution job")

// Job states.
const (
	JobRunning   = "in-progress"
	JobComplete  = "complete"
	JobFailed    = "error"
	JobCancelled = "cancelled"
)

const kvJob = "atr/job/"

// Job is one asynchronous attribution run (Group/$attribute), kept in the
// KV space so its outcome survives the request that started it.
type Job struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Requested time.Time `json:"requested"`
	Finished  time.Time `json:"finished,omitzero"`
	Method    Method    `json:"method"`
	AsOf      string    `json:"asOf"`
	Contract  string    `json:"contract,omitempty"`
	Who       string    `json:"who,omitempty"`
	Result    *Result   `json:"result,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// Jobs runs attribution jobs one at a time through a Lists (so they never
// overlap list changes).
type Jobs struct {
	lists *Lists
	kv    store.KV
	log   *slog.Logger

	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	cancel map[string]context.CancelFunc
}

// NewJobs returns a Jobs; jobs left running by a previous process are
// marked failed.
func NewJobs(ctx context.Context, lists *Lists, log *slog.Logger) (*Jobs, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv := lists.st.KV()
	var stale []*Job
	err := kv.Scan(ctx, kvJob, func(key string, v []byte) error {
		var j Job
		if err := json.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("attribution: corrupt job %s: %w", key, err)
		}
		if j.Status == JobRunning {
			stale = append(stale, &j)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	js := &Jobs{lists: lists, kv: kv, log: log, cancel: map[string]context.CancelFunc{}}
	for _, j := range stale {
		j.Status, j.Error, j.Finished = JobFailed, "interrupted by a server restart", time.Now().UTC()
		if err := js.save(ctx, j); err != nil {
			return nil, err
		}
	}
	js.ctx, js.stop = context.WithCancel(context.WithoutCancel(ctx))
	return js, nil
}

// Start queues a run and returns its job at once; the run proceeds in the
// background.
func (js *Jobs) Start(ctx context.Context, opts RunOptions) (*Job, error) {
	if opts.AsOf.IsZero() {
		return nil, fmt.Errorf("attribution: as-of date required")
	}
	if _, err := ParseMethod(string(opts.Method)); err != nil {
		return nil, err
	}
	j := &Job{ID: newID(), Status: JobRunning, Requested: time.Now().UTC(), Method: opts.Method,
		AsOf: opts.AsOf.Format(time.DateOnly), Contract: opts.Contract, Who: opts.Audit.Who}
	if err := js.save(ctx, j); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(js.ctx)
	js.mu.Lock()
	js.cancel[j.ID] = cancel
	js.mu.Unlock()
	js.wg.Add(1)
	go func() {
		defer js.wg.Done()
		defer cancel()
		res, err := js.lists.Run(rctx, opts)
		js.mu.Lock()
		delete(js.cancel, j.ID)
		js.mu.Unlock()
		j.Finished = time.Now().UTC()
		switch {
		case err == nil:
			j.Status, j.Result = JobComplete, res
		case errors.Is(err, context.Canceled):
			j.Status, j.Error = JobCancelled, "cancelled"
		default:
			j.Status, j.Error = JobFailed, err.Error()
			js.log.Error("attribution job failed", "job", j.ID, "error", err)
		}
		if err := js.save(context.WithoutCancel(rctx), j); err != nil {
			js.log.Error("attribution job: saving its outcome", "job", j.ID, "error", err)
		}
	}()
	out := *j // the goroutine owns j
	return &out, nil
}

// Get returns a job's state.
func (js *Jobs) Get(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := getJSON(ctx, js.kv, kvJob+id, &j); err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("%w: %s", ErrNoJob, id)
		}
		return nil, err
	}
	return &j, nil
}

// Cancel stops a running job, or forgets a finished one.
func (js *Jobs) Cancel(ctx context.Context, id string) error {
	if _, err := js.Get(ctx, id); err != nil {
		return err
	}
	js.mu.Lock()
	cancel, running := js.cancel[id]
	js.mu.Unlock()
	if running {
		cancel()
		return nil
	}
	return js.kv.Delete(ctx, kvJob+id)
}

// Close cancels running jobs and waits for them.
func (js *Jobs) Close() {
	js.stop()
	js.wg.Wait()
}

func (js *Jobs) save(ctx context.Context, j *Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("attribution: %w", err)
	}
	return js.kv.Put(ctx, kvJob+j.ID, b)
}
