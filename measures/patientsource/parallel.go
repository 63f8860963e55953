package patientsource

import (
	"context"
	"errors"
	"runtime"
	"sync"
)

// Parallel calls a worker function for every patient of src on workers
// goroutines (0 means GOMAXPROCS) and sink with the results in src's order,
// from the calling goroutine. newWorker runs once per goroutine, so each
// worker can own state that is not safe to share (an engine session).
// Patients in flight are bounded, so memory does not grow with the
// population. The first sink error stops the run and is returned; results
// still in flight are dropped.
func Parallel[T any](ctx context.Context, src Source, workers int, newWorker func() func(context.Context, *Patient) T, sink func(T) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		seq int
		p   *Patient
	}
	type done struct {
		seq int
		v   T
	}
	window := workers * 8
	jobs := make(chan job, workers*2)
	results := make(chan done, window)
	slots := make(chan struct{}, window)
	var srcErr error
	go func() {
		defer close(jobs)
		seq := 0
		srcErr = src.Each(ctx, func(p *Patient) error {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case jobs <- job{seq: seq, p: p}:
			case <-ctx.Done():
				return ctx.Err()
			}
			seq++
			return nil
		})
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work := newWorker()
			for j := range jobs {
				v := work(ctx, j.p)
				select {
				case results <- done{seq: j.seq, v: v}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	// Results arrive out of order; hold them until their turn. The slots
	// bound how many can be waiting.
	pending := map[int]T{}
	next := 0
	var sinkErr error
	for d := range results {
		pending[d.seq] = d.v
		for {
			v, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-slots
			if sinkErr == nil {
				if err := sink(v); err != nil {
					sinkErr = err
					cancel()
				}
			}
		}
	}
	if sinkErr != nil {
		return sinkErr
	}
	if srcErr != nil && !errors.Is(srcErr, context.Canceled) {
		return srcErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return srcErr
}
