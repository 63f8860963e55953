package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/store"
)

// Event is one applied ADT event (the fields of adt.Event this package
// needs, so it does not depend on the intake).
type Event struct {
	Kind            string // admit, discharge, transfer, register, cancel-admit, cancel-discharge (others are ignored)
	Trigger         string // A01...
	PatientID       string
	EncounterID     string
	MessageHeaderID string
	At              time.Time
}

// Options configure a Manager.
type Options struct {
	// BaseURL is the absolute FHIR base of this server, used in fullUrls
	// and references of notifications.
	BaseURL string
	// MaxAttempts bounds deliveries of one notification (default 6).
	MaxAttempts int
	// Backoff is the delay before the first retry; it doubles with every
	// failed attempt up to MaxBackoff (defaults 2s and 10m).
	Backoff, MaxBackoff time.Duration
	// Workers is the number of concurrent deliveries (default 4); the
	// notifications of one Subscription are delivered one at a time, in
	// event order.
	Workers int
	// Timeout bounds one delivery request (default 10s).
	Timeout time.Duration
	// Client sends the notifications (default a client with Timeout).
	Client *http.Client
	Logger *slog.Logger
	Now    func() time.Time
	// AllowEndpoint, when set, vets a Subscription's endpoint at create and
	// update (e.g. a host allow-list, so clients cannot make the server
	// post into its own network); its error is the client's 400.
	AllowEndpoint func(*url.URL) error
	// Registry receives the delivery metrics (nil: not exported).
	Registry prometheus.Registerer
	// Refresh is how long the list of Subscriptions is cached between
	// events (default 1s); changes made through this package are seen at
	// once.
	Refresh time.Duration
}

// KV layout:
//
//	subscription/queue/<seq>        job (a pending delivery)
//	subscription/dead/<sub>/<seq>   DeadLetter
//	subscription/events/<sub>/<n>   events since subscription start: the highest n
const (
	kvQueue  = "subscription/queue/"
	kvDead   = "subscription/dead/"
	kvEvents = "subscription/events/"
)

// Job kinds.
const (
	kindHandshake    = "handshake"
	kindNotification = "event-notification"
)

// job is one pending delivery as persisted.
type job struct {
	Seq            uint64    `json:"seq"`
	Sub            string    `json:"sub"`
	Type           string    `json:"type"` // handshake | event-notification
	EventNumber    int64     `json:"eventNumber,omitempty"`
	Kind           string    `json:"kind,omitempty"`
	Trigger        string    `json:"trigger,omitempty"`
	At             time.Time `json:"at"`
	Patient        string    `json:"patient,omitempty"`
	Encounter      string    `json:"encounter,omitempty"`
	EncounterVer   uint64    `json:"encounterVersion,omitempty"`
	MessageHeader  string    `json:"messageHeader,omitempty"`
	Attempts       int       `json:"attempts"`
	NextAt         time.Time `json:"next"`
	LastError      string    `json:"lastError,omitempty"`
	LastHTTPStatus int       `json:"lastStatus,omitempty"`
	// unsaved marks a job queued in memory whose store write is still in
	// flight: it is not delivered before it is durable.
	unsaved bool
}

func (j *job) key() string { return kvQueue + fmt.Sprintf("%020d", j.Seq) }

// DeadLetter is a notification whose delivery attempts were exhausted (or
// refused for good by the receiver).
type DeadLetter struct {
	Subscription   string    `json:"subscription"`
	Type           string    `json:"type"`
	EventNumber    int64     `json:"eventNumber,omitempty"`
	Kind           string    `json:"kind,omitempty"`
	At             time.Time `json:"at"`
	Patient        string    `json:"patient,omitempty"`
	Encounter      string    `json:"encounter,omitempty"`
	Attempts       int       `json:"attempts"`
	LastError      string    `json:"lastError"`
	LastHTTPStatus int       `json:"lastStatus,omitempty"`
	DeadAt         time.Time `json:"deadAt"`
}

// subQueue holds the pending jobs of one Subscription in event order.
type subQueue struct {
	jobs []*job
	busy bool // a worker is delivering its head
}

// Manager routes events to Subscriptions and delivers notifications.
type Manager struct {
	st   store.Store
	kv   store.KV
	opts Options
	log  *slog.Logger

	seqMu sync.Mutex
	seq   uint64

	enqMu  sync.Mutex       // serialises event numbering
	counts map[string]int64 // events since subscription start, by id

	mu     sync.Mutex
	queues map[string]*subQueue
	wake   chan struct{} // closed and replaced when work arrives
	queued int

	cacheMu sync.Mutex
	cache   []*Subscription
	cacheAt time.Time
	parsed  map[string]*Subscription // id@version -> parsed

	metrics *metrics

	stashMu sync.Mutex
	stash   map[string]stashed // message id -> jobs Queue built for it, until Notify

	done    chan string // keys of delivered jobs, deleted in batches
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
}

// New returns a Manager over st; call Start to deliver.
func New(st store.Store, opts Options) *Manager {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 2 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Minute
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: opts.Timeout}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Refresh <= 0 {
		opts.Refresh = time.Second
	}
	return &Manager{
		st: st, kv: st.KV(), opts: opts, log: opts.Logger,
		counts: map[string]int64{}, queues: map[string]*subQueue{},
		wake: make(chan struct{}), parsed: map[string]*Subscription{},
		done: make(chan string, 1024), stash: map[string]stashed{},
	}
}

// Start loads the deliveries a previous run left pending and starts the
// workers; they stop when ctx ends or Stop is called.
func (m *Manager) Start(ctx context.Context) error {
	met, err := newMetrics(m.opts.Registry, m.Pending)
	if err != nil {
		return err
	}
	m.metrics = met
	m.seq = uint64(m.opts.Now().UnixNano())
	var jobs []*job
	err = m.kv.Scan(ctx, kvQueue, func(key string, v []byte) error {
		var j job
		if err := json.Unmarshal(v, &j); err != nil {
			m.log.Error("subscription: dropping corrupt queue record", "key", key, "error", err)
			return nil
		}
		jobs = append(jobs, &j)
		return nil
	})
	if err != nil {
		return fmt.Errorf("subscription: load queue: %w", err)
	}
	m.mu.Lock()
	for _, j := range jobs {
		if j.Seq >= m.seq {
			m.seq = j.Seq + 1
		}
		m.pushLocked(j)
	}
	m.mu.Unlock()
	if len(jobs) > 0 {
		m.log.Info("subscription: resuming pending deliveries", "count", len(jobs))
	}
	ctx, m.cancel = context.WithCancel(ctx)
	m.started = true
	m.wg.Add(m.opts.Workers + 1)
	for range m.opts.Workers {
		go m.worker(ctx)
	}
	go m.flushDone(ctx)
	return nil
}

// PublishTopic writes the topic's description (TopicResource) as
// Basic/encounter-adt, unless it is already stored unchanged.
func (m *Manager) PublishTopic(ctx context.Context) error {
	_, err := m.st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Basic", ID: "encounter-adt",
		Body: TopicResource(), SkipUnchanged: true}}})
	if err != nil {
		return fmt.Errorf("subscription: publish topic: %w", err)
	}
	return nil
}

// Stop stops the workers and waits for deliveries in flight; pending
// deliveries stay queued in the store.
func (m *Manager) Stop() {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
}

// Pending is the number of queued deliveries.
func (m *Manager) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.queued
}

func (m *Manager) nextSeq() uint64 {
	m.seqMu.Lock()
	defer m.seqMu.Unlock()
	m.seq++
	return m.seq
}

// pushLocked appends j to its Subscription's queue (in sequence order) and
// wakes the workers.
func (m *Manager) pushLocked(j *job) {
	q := m.queues[j.Sub]
	if q == nil {
		q = &subQueue{}
		m.queues[j.Sub] = q
	}
	i := len(q.jobs)
	for i > 0 && q.jobs[i-1].Seq > j.Seq && !(i == 1 && q.busy) { // never ahead of a head in delivery
		i--
	}
	q.jobs = append(q.jobs, nil)
	copy(q.jobs[i+1:], q.jobs[i:])
	q.jobs[i] = j
	m.queued++
	m.wakeLocked()
}

// removeLocked takes a job whose store write failed out of its queue.
func (m *Manager) removeLocked(j *job) {
	q := m.queues[j.Sub]
	if q == nil {
		return
	}
	if i := slices.Index(q.jobs, j); i >= 0 {
		q.jobs = slices.Delete(q.jobs, i, i+1)
		m.queued--
	}
	if len(q.jobs) == 0 && !q.busy {
		delete(m.queues, j.Sub)
	}
}

// wakeLocked wakes the workers waiting for work.
func (m *Manager) wakeLocked() {
	close(m.wake)
	m.wake = make(chan struct{})
}

// live drops the assignments of lists whose Group was deleted over REST:
// such a list keeps its index but grants its organization no visibility
// (access.NewListCache), so it must not route alerts either.
func (m *Manager) live(ctx context.Context, assigns []attribution.Assignment) ([]attribution.Assignment, error) {
	out := assigns[:0]
	for _, a := range assigns {
		_, err := m.st.Read(ctx, "Group", a.GroupID)
		switch {
		case errors.Is(err, store.ErrDeleted):
			continue
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("list %s: %w", a.GroupID, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// targets are the Subscriptions an event is delivered to, and the event
// time used for attribution.
func (m *Manager) targets(ctx context.Context, ev Event) ([]*Subscription, time.Time, error) {
	at := ev.At
	if at.IsZero() {
		at = m.opts.Now()
	}
	if !topicKinds[ev.Kind] || ev.PatientID == "" {
		return nil, at, nil
	}
	subs, err := m.Subscriptions(ctx)
	if err != nil {
		return nil, at, err
	}
	var cands []*Subscription
	for _, s := range subs {
		if s.Status == StatusActive && s.Filter.Matches(ev.Kind, ev.PatientID) && (s.End.IsZero() || at.Before(s.End)) {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		return nil, at, nil
	}
	assigns, err := attribution.Assignments(ctx, m.kv, ev.PatientID, at)
	if err == nil {
		assigns, err = m.live(ctx, assigns)
	}
	if err != nil {
		return nil, at, fmt.Errorf("subscription: attribution of Patient/%s: %w", ev.PatientID, err)
	}
	var targets []*Subscription
	for _, s := range cands {
		for _, a := range assigns {
			if ownedBy(a, s.Owner) && (s.Filter.Groups == nil || s.Filter.Groups[a.GroupID]) {
				targets = append(targets, s)
				break
			}
		}
	}
	return targets, at, nil
}

// stashed are the jobs Queue built for one message.
type stashed struct {
	jobs []*job
	at   time.Time
}

// Queue returns the KV writes that queue the notifications of an event,
// for the intake to commit atomically with the message (adt.Options.Queue):
// no notification is lost between the message's commit and Notify. It
// writes nothing itself and may be called again for the same message (the
// last call wins). Such jobs take their event number when first
// delivered; Notify, called after the commit, hands them to the workers.
func (m *Manager) Queue(ctx context.Context, ev Event) (map[string][]byte, error) {
	targets, at, err := m.targets(ctx, ev)
	if err != nil {
		return nil, err
	}
	ops := map[string][]byte{}
	var jobs []*job
	for _, s := range targets {
		j := &job{Seq: m.nextSeq(), Sub: s.ID, Type: kindNotification, Kind: ev.Kind, Trigger: ev.Trigger,
			At: at.UTC(), Patient: ev.PatientID, Encounter: ev.EncounterID, MessageHeader: ev.MessageHeaderID,
			NextAt: m.opts.Now()}
		b, err := json.Marshal(j)
		if err != nil {
			return nil, err
		}
		ops[j.key()] = b
		jobs = append(jobs, j)
	}
	if ev.MessageHeaderID != "" {
		m.stashMu.Lock()
		now := m.opts.Now()
		for k, st := range m.stash {
			if now.Sub(st.at) > 10*time.Minute { // a message whose commit failed
				delete(m.stash, k)
			}
		}
		m.stash[ev.MessageHeaderID] = stashed{jobs: jobs, at: now}
		m.stashMu.Unlock()
	}
	return ops, nil
}

// unstash takes the jobs Queue built for the event's message.
func (m *Manager) unstash(ev Event) ([]*job, bool) {
	if ev.MessageHeaderID == "" {
		return nil, false
	}
	m.stashMu.Lock()
	defer m.stashMu.Unlock()
	st, ok := m.stash[ev.MessageHeaderID]
	delete(m.stash, ev.MessageHeaderID)
	return st.jobs, ok
}

// handOver gives committed jobs to the workers, with the Encounter
// version the event produced (the stored jobs read the current one).
func (m *Manager) handOver(ctx context.Context, ev Event, jobs []*job) {
	if len(jobs) == 0 {
		return
	}
	if ev.EncounterID != "" {
		if res, err := m.st.Read(ctx, "Encounter", ev.EncounterID); err == nil {
			for _, j := range jobs {
				j.EncounterVer = res.Version
			}
		}
	}
	m.mu.Lock()
	for _, j := range jobs {
		m.pushLocked(j)
	}
	m.mu.Unlock()
	if m.metrics != nil {
		m.metrics.queued.Add(float64(len(jobs)))
	}
}

// Notify queues a notification for every active Subscription whose owner
// the event's patient is attributed to at the event time and whose filter
// passes. The deliveries are durable when Notify returns. For an event
// whose jobs Queue already wrote with the message, Notify only hands them
// to the workers.
func (m *Manager) Notify(ctx context.Context, ev Event) error {
	if jobs, ok := m.unstash(ev); ok {
		m.handOver(ctx, ev, jobs)
		return nil
	}
	targets, at, err := m.targets(ctx, ev)
	if err != nil || len(targets) == 0 {
		return err
	}
	var encVer uint64
	if ev.EncounterID != "" {
		// The version the event produced, so a late or retried full-resource
		// notification still carries the state of its own event.
		if res, err := m.st.Read(ctx, "Encounter", ev.EncounterID); err == nil {
			encVer = res.Version
		}
	}
	// Numbers are handed out and the jobs queued (not yet deliverable) in
	// event order under enqMu; the durable write happens outside it, so
	// concurrent events share the store's group commit.
	m.enqMu.Lock()
	ops := map[string][]byte{}
	var jobs []*job
	for _, s := range targets {
		n, err := m.eventCount(ctx, s.ID)
		if err != nil {
			m.enqMu.Unlock()
			return err
		}
		n++
		m.counts[s.ID] = n
		j := &job{Seq: m.nextSeq(), Sub: s.ID, Type: kindNotification, EventNumber: n, Kind: ev.Kind, Trigger: ev.Trigger,
			At: at.UTC(), Patient: ev.PatientID, Encounter: ev.EncounterID, EncounterVer: encVer, MessageHeader: ev.MessageHeaderID,
			NextAt: m.opts.Now(), unsaved: true}
		b, err := json.Marshal(j)
		if err != nil {
			m.enqMu.Unlock()
			return err
		}
		ops[j.key()] = b
		// The count is a key per number: a batch deleting only the number
		// before its own leaves the highest number whatever order
		// concurrent batches commit in.
		ops[eventKey(s.ID, n)] = []byte{}
		if n > 1 {
			ops[eventKey(s.ID, n-1)] = nil
		}
		jobs = append(jobs, j)
	}
	m.mu.Lock()
	for _, j := range jobs {
		m.pushLocked(j)
	}
	m.mu.Unlock()
	m.enqMu.Unlock()

	err = m.kv.Batch(ctx, ops)
	m.mu.Lock()
	for _, j := range jobs {
		if err != nil {
			m.removeLocked(j)
		} else {
			j.unsaved = false
		}
	}
	m.wakeLocked()
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("subscription: queue notifications: %w", err)
	}
	if m.metrics != nil {
		m.metrics.queued.Add(float64(len(jobs)))
	}
	return nil
}

func eventKey(id string, n int64) string { return kvEvents + id + "/" + fmt.Sprintf("%020d", n) }

// eventCount is the number of events queued for a Subscription so far;
// the caller holds enqMu.
func (m *Manager) eventCount(ctx context.Context, id string) (int64, error) {
	if n, ok := m.counts[id]; ok {
		return n, nil
	}
	var n int64
	err := m.kv.Scan(ctx, kvEvents+id+"/", func(key string, _ []byte) error {
		v, err := strconv.ParseInt(key[strings.LastIndexByte(key, '/')+1:], 10, 64)
		if err != nil {
			return fmt.Errorf("subscription: corrupt event count key %s: %w", key, err)
		}
		n = max(n, v)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("subscription: event count: %w", err)
	}
	m.counts[id] = n
	return n, nil
}

// EventsSinceStart is the number of events queued for a Subscription.
func (m *Manager) EventsSinceStart(ctx context.Context, id string) (int64, error) {
	m.enqMu.Lock()
	defer m.enqMu.Unlock()
	return m.eventCount(ctx, id)
}

// Subscriptions lists the stored Subscriptions that are valid and bound to
// an owner (one written around this package's validation, e.g. inside a
// transaction Bundle, is ignored). The list is cached for Options.Refresh.
func (m *Manager) Subscriptions(ctx context.Context) ([]*Subscription, error) {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	now := m.opts.Now()
	if m.cache != nil && now.Sub(m.cacheAt) < m.opts.Refresh {
		return m.cache, nil
	}
	out := []*Subscription{}
	parsed := map[string]*Subscription{}
	err := m.st.Scan(ctx, "Subscription", time.Time{}, func(r *store.Resource) error {
		k := r.ID + "@" + strconv.FormatUint(r.Version, 10)
		s, ok := m.parsed[k]
		if !ok {
			var err error
			s, err = Parse(r.Body)
			if err != nil || s.Owner == "" {
				m.log.Warn("subscription: ignoring a Subscription this server did not validate", "id", r.ID)
				return nil
			}
			s.ID, s.Version = r.ID, r.Version
		}
		parsed[k] = s
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("subscription: list: %w", err)
	}
	m.cache, m.cacheAt, m.parsed = out, now, parsed
	return out, nil
}

// changing runs a write of Subscriptions and drops the cached list, holding
// the cache lock across both: no event can see the write in the store yet
// be routed with the list from before it.
func (m *Manager) changing(write func() error) error {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	m.cache = nil
	return write()
}

// queueHandshake queues the handshake that moves a requested Subscription
// to active.
func (m *Manager) queueHandshake(ctx context.Context, id string) error {
	j := &job{Seq: m.nextSeq(), Sub: id, Type: kindHandshake, At: m.opts.Now().UTC(), NextAt: m.opts.Now()}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := m.kv.Put(ctx, j.key(), b); err != nil {
		return fmt.Errorf("subscription: queue handshake: %w", err)
	}
	m.mu.Lock()
	m.pushLocked(j)
	m.mu.Unlock()
	return nil
}

// setStatus records a Subscription's status (and error text) as a new
// version, retrying when a client update races it.
func (m *Manager) setStatus(ctx context.Context, id, status, reason string) error {
	for range 5 {
		res, err := m.st.Read(ctx, "Subscription", id)
		if err != nil {
			return err
		}
		body, err := sjson.SetBytes(res.Body, "status", status)
		if err == nil {
			if reason != "" {
				body, err = sjson.SetBytes(body, "error", reason)
			} else {
				body, err = sjson.DeleteBytes(body, "error")
			}
		}
		if err != nil {
			return err
		}
		err = m.changing(func() error {
			_, err := m.st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Subscription", ID: id, Body: body, IfMatch: res.Version}}})
			return err
		})
		if errors.Is(err, store.ErrVersionConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("subscription: status of %s: %w", id, store.ErrVersionConflict)
}

// DeadLetters lists the dead letters of a Subscription, oldest first.
func (m *Manager) DeadLetters(ctx context.Context, id string) ([]DeadLetter, error) {
	out := []DeadLetter{}
	err := m.kv.Scan(ctx, kvDead+id+"/", func(key string, v []byte) error {
		var d DeadLetter
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("subscription: corrupt dead letter %s: %w", key, err)
		}
		out = append(out, d)
		return nil
	})
	return out, err
}
