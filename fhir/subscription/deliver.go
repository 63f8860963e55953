package subscription

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/equitas/equitas/store"
)

// worker delivers the head job of one idle Subscription queue at a time.
func (m *Manager) worker(ctx context.Context) {
	defer m.wg.Done()
	for ctx.Err() == nil {
		j, wait, wake := m.take()
		if j != nil {
			m.deliver(ctx, j)
			continue
		}
		var timer <-chan time.Time
		var t *time.Timer
		if wait > 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// take claims the due head job of the idle queue that waited longest;
// otherwise it returns how long until the next one is due (0: none queued)
// and the channel closed when new work arrives.
func (m *Manager) take() (*job, time.Duration, chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	var best *subQueue
	var wait time.Duration
	for _, q := range m.queues {
		if q.busy || len(q.jobs) == 0 || q.jobs[0].unsaved {
			continue
		}
		h := q.jobs[0]
		if d := h.NextAt.Sub(now); d > 0 {
			if wait == 0 || d < wait {
				wait = d
			}
			continue
		}
		if best == nil || h.NextAt.Before(best.jobs[0].NextAt) {
			best = q
		}
	}
	if best == nil {
		return nil, wait, m.wake
	}
	best.busy = true
	return best.jobs[0], 0, nil
}

// release ends a delivery: the head is removed when finished, or stays
// (rescheduled) for a retry.
func (m *Manager) release(j *job, finished bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.queues[j.Sub]
	q.busy = false
	if finished {
		if i := slices.Index(q.jobs, j); i >= 0 {
			q.jobs = slices.Delete(q.jobs, i, i+1)
		}
		m.queued--
		if len(q.jobs) == 0 {
			delete(m.queues, j.Sub)
		}
	}
	m.wakeLocked()
}

// deliver makes one attempt at j.
func (m *Manager) deliver(ctx context.Context, j *job) {
	res, err := m.st.Read(ctx, "Subscription", j.Sub)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		m.finish(ctx, j) // nobody to tell any more
		return
	}
	if err != nil {
		m.retry(ctx, j, 0, fmt.Errorf("read subscription: %w", err))
		return
	}
	sub, err := Parse(res.Body)
	if err != nil || sub.Owner == "" {
		m.drop(ctx, j, "the Subscription is no longer valid")
		return
	}
	sub.ID, sub.Version = res.ID, res.Version
	switch {
	case sub.Status == StatusOff:
		m.finish(ctx, j)
		return
	case sub.Status == StatusError:
		m.drop(ctx, j, "the Subscription is in status error")
		return
	case j.Type == kindNotification && sub.Status != StatusActive:
		m.drop(ctx, j, "the Subscription is not active")
		return
	}
	if j.Type == kindNotification && j.EventNumber == 0 {
		if err := m.number(ctx, j); err != nil {
			m.retry(ctx, j, 0, fmt.Errorf("number the event: %w", err))
			return
		}
	}
	body, err := m.notification(ctx, sub, j)
	if err != nil {
		m.retry(ctx, j, 0, fmt.Errorf("build notification: %w", err))
		return
	}
	code, err := m.post(ctx, sub, body)
	if err != nil {
		if permanent(code) {
			j.Attempts++
			j.LastError, j.LastHTTPStatus = err.Error(), code
			m.bury(ctx, j, true)
			return
		}
		m.retry(ctx, j, code, err)
		return
	}
	if j.Type == kindHandshake {
		if err := m.setStatus(ctx, sub.ID, StatusActive, ""); err != nil {
			m.retry(ctx, j, code, fmt.Errorf("activate: %w", err))
			return
		}
	}
	m.count("delivered")
	m.finish(ctx, j)
}

func (m *Manager) count(result string) {
	if m.metrics != nil {
		m.metrics.deliveries.WithLabelValues(result).Inc()
	}
}

// number gives a job queued with its message (Queue) its event number,
// durably before the first attempt, so a redelivery keeps it. A
// Subscription's jobs are delivered one at a time in queue order, so the
// numbers follow that order. A failed write loses its number (a gap).
func (m *Manager) number(ctx context.Context, j *job) error {
	m.enqMu.Lock()
	n, err := m.eventCount(ctx, j.Sub)
	if err == nil {
		n++
		m.counts[j.Sub] = n
	}
	m.enqMu.Unlock()
	if err != nil {
		return err
	}
	numbered := *j
	numbered.EventNumber = n
	b, err := json.Marshal(&numbered)
	if err != nil {
		return err
	}
	ops := map[string][]byte{j.key(): b, eventKey(j.Sub, n): {}}
	if n > 1 {
		ops[eventKey(j.Sub, n-1)] = nil
	}
	if err := m.kv.Batch(ctx, ops); err != nil {
		return err
	}
	j.EventNumber = n
	return nil
}

// post sends one notification; err is set for anything but a 2xx.
func (m *Manager) post(ctx context.Context, sub *Subscription, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for _, h := range sub.Headers {
		req.Header.Add(h[0], h[1])
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := m.opts.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// permanent reports a refusal that a resend would not change (Da Vinci
// Alerts: do not resend on 4xx until the problem is fixed), apart from
// timeouts and rate limiting.
func permanent(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// finish removes a delivered (or moot) job; its queue record is deleted
// in a batch shortly after, so a crash in between means a redelivery, not
// a loss.
func (m *Manager) finish(ctx context.Context, j *job) {
	select {
	case m.done <- j.key():
	case <-ctx.Done():
	}
	m.release(j, true)
}

// retry reschedules j with exponential backoff, or buries it when its
// attempts are exhausted.
func (m *Manager) retry(ctx context.Context, j *job, code int, cause error) {
	if ctx.Err() != nil {
		// Stopping: the attempt was cut short by us, not failed by the
		// receiver; the job stays queued (in the store) for the next run.
		m.release(j, false)
		return
	}
	j.Attempts++
	j.LastError, j.LastHTTPStatus = cause.Error(), code
	if j.Attempts >= m.opts.MaxAttempts {
		m.bury(ctx, j, true)
		return
	}
	d := m.opts.Backoff << (j.Attempts - 1)
	if d > m.opts.MaxBackoff || d <= 0 {
		d = m.opts.MaxBackoff
	}
	j.NextAt = m.opts.Now().Add(d)
	m.count("retried")
	m.log.Warn("subscription: delivery failed, will retry", "subscription", j.Sub, "event", j.EventNumber,
		"attempt", j.Attempts, "retry_in", d.String(), "error", cause.Error())
	if b, err := json.Marshal(j); err == nil {
		if err := m.kv.Put(ctx, j.key(), b); err != nil {
			m.log.Error("subscription: persist retry", "error", err)
		}
	}
	m.release(j, false)
}

// drop dead-letters a job that is not delivered because its Subscription
// no longer takes it (invalid, in error, not active).
func (m *Manager) drop(ctx context.Context, j *job, reason string) {
	j.LastError = reason
	m.bury(ctx, j, false)
}

// bury turns j into a dead letter. When the receiver failed it (failed),
// the Subscription goes to status error: it could not be reached after
// every attempt, or refused the notification for good.
func (m *Manager) bury(ctx context.Context, j *job, failed bool) {
	d := DeadLetter{Subscription: j.Sub, Type: j.Type, EventNumber: j.EventNumber, Kind: j.Kind, At: j.At,
		Patient: j.Patient, Encounter: j.Encounter, Attempts: j.Attempts, LastError: j.LastError,
		LastHTTPStatus: j.LastHTTPStatus, DeadAt: m.opts.Now().UTC()}
	b, err := json.Marshal(d)
	if err == nil {
		err = m.kv.Batch(ctx, map[string][]byte{
			kvDead + j.Sub + "/" + fmt.Sprintf("%020d", j.Seq): b,
			j.key(): nil,
		})
	}
	if err != nil {
		m.log.Error("subscription: dead letter", "subscription", j.Sub, "error", err)
		j.NextAt = m.opts.Now().Add(m.opts.MaxBackoff)
		m.release(j, false)
		return
	}
	m.count("dead")
	m.log.Warn("subscription: notification dead-lettered", "subscription", j.Sub, "event", j.EventNumber,
		"attempts", j.Attempts, "error", j.LastError)
	if res, err := m.st.Read(ctx, "Subscription", j.Sub); failed && err == nil {
		if s, err := Parse(res.Body); err == nil && s.Status != StatusError && s.Status != StatusOff {
			if err := m.setStatus(ctx, j.Sub, StatusError, "delivery failed: "+j.LastError); err != nil {
				m.log.Error("subscription: set status error", "subscription", j.Sub, "error", err)
			}
		}
	}
	m.release(j, true)
}

// flushDone deletes the queue records of delivered jobs in batches.
func (m *Manager) flushDone(ctx context.Context) {
	defer m.wg.Done()
	flush := func(keys map[string][]byte) {
		if len(keys) == 0 {
			return
		}
		// A fresh context: the last batch is written even while stopping.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := m.kv.Batch(fctx, keys); err != nil {
			m.log.Error("subscription: delete delivered jobs", "error", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			keys := map[string][]byte{}
			for {
				select {
				case k := <-m.done:
					keys[k] = nil
				default:
					flush(keys)
					return
				}
			}
		case k := <-m.done:
			keys := map[string][]byte{k: nil}
		more:
			for len(keys) < 512 {
				select {
				case k := <-m.done:
					keys[k] = nil
				default:
					break more
				}
			}
			flush(keys)
		}
	}
}
