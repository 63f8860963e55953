// Package mllp carries HL7 v2 messages over TCP with the Minimal Lower
// Layer Protocol: each message is framed as <VT> message <FS><CR> and
// answered on the same connection by one framed acknowledgement.
//
// Server accepts many long-lived connections, each read by its own
// goroutine; the number of messages being handled at once across all
// connections is bounded, and so is the size of a message. Senders may
// pipeline (send before the previous ACK arrived): their messages are
// handled concurrently, patient by patient in order, and acknowledged in
// order. The Handler
// decides the acknowledgement; the server writes it only after the Handler
// returns, so a Handler that commits durably before returning (the ADT
// processor) never has a message acknowledged that a crash could lose.
// Shutdown stops accepting, lets messages already received finish and be
// acknowledged, and closes idle connections.
//
// Client is a small stop-and-wait sender for tests, benchmarks and tools.
package mllp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Handler answers one HL7 v2 message with its ER7 acknowledgement. It must
// be safe for concurrent use and always return an acknowledgement.
type Handler interface {
	HandleER7(ctx context.Context, msg []byte) []byte
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, msg []byte) []byte

// HandleER7 calls f.
func (f HandlerFunc) HandleER7(ctx context.Context, msg []byte) []byte { return f(ctx, msg) }

// Defaults for Config's zero values.
const (
	DefaultMaxMessageBytes = 1 << 20
	DefaultReadTimeout     = 30 * time.Second
	DefaultIdleTimeout     = 10 * time.Minute
	DefaultWriteTimeout    = 30 * time.Second
	DefaultMaxConnections  = 512
	DefaultWorkers         = 64
	DefaultPipeline        = 16
)

// Config assembles a Server.
type Config struct {
	Handler Handler
	Logger  *slog.Logger
	// MaxMessageBytes bounds one message; a larger one is read to its end
	// and answered by Reject (or the connection is closed when Reject is
	// nil).
	MaxMessageBytes int
	// ReadTimeout bounds receiving one frame once its start block arrived.
	ReadTimeout time.Duration
	// IdleTimeout closes a connection on which no frame starts for this long.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one acknowledgement.
	WriteTimeout time.Duration
	// MaxConnections bounds open connections; further peers wait in the
	// listen backlog.
	MaxConnections int
	// Workers bounds how many messages are handled at once over all
	// connections.
	Workers int
	// Pipeline bounds the messages read from one connection and not yet
	// acknowledged (default DefaultPipeline; 1 reads the next frame only
	// after the previous ACK was written). Senders that do not wait for
	// each ACK get their messages handled concurrently, so more of them
	// share a durable commit; ACKs still go out in message order, and a
	// message waits for earlier ones about the same patient or visit (or
	// any earlier one, when it names none or merges patients), so each
	// patient's events apply in the order sent.
	Pipeline int
	// Reject builds the acknowledgement of a message the server refuses
	// without handing it to the Handler (today: an oversize message); head
	// is the message's beginning, reason says why. Nil closes the
	// connection instead.
	Reject func(head []byte, reason string) []byte
	// Registerer receives the server's metrics (nil: none).
	Registerer prometheus.Registerer
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("mllp: server closed")

// Server is an MLLP listener.
type Server struct {
	cfg     Config
	log     *slog.Logger
	met     *metrics
	workers chan struct{}
	slots   chan struct{} // connection slots
	// ctx is handed to the Handler; it ends only when Shutdown gives up
	// waiting, so messages in flight finish their commit.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	done      chan struct{} // closed by Shutdown
	wg        sync.WaitGroup
}

// NewServer returns a Server; call Serve to accept connections.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("mllp: Config.Handler is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Pipeline <= 0 {
		cfg.Pipeline = DefaultPipeline
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("mllp: register metrics: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		met:       met,
		workers:   make(chan struct{}, cfg.Workers),
		slots:     make(chan struct{}, cfg.MaxConnections),
		ctx:       ctx,
		cancel:    cancel,
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		done:      make(chan struct{}),
	}, nil
}

// ListenAndServe listens on addr (host:port) and serves until Shutdown.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mllp: %w", err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown, which closes ln; it then
// returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()

	var backoff time.Duration
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.done:
			return ErrServerClosed
		}
		nc, err := ln.Accept()
		if err != nil {
			<-s.slots
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("mllp accept", "error", err, "retry_in", backoff.String())
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("mllp: accept: %w", err)
		}
		backoff = 0
		c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), idle: true}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			_ = nc.Close()
			<-s.slots
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// isTemporary reports accept errors worth retrying (out of file
// descriptors, a connection reset before it was accepted).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Shutdown stops accepting, closes idle connections, and waits until every
// message already received has been handled and acknowledged. When ctx
// ends first, the remaining connections are closed (their messages were
// not acknowledged, so senders resend them), Handler contexts are
// cancelled, and Shutdown still waits for the Handlers to return before it
// returns ctx's error: the store they write to may be closed next.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.done)
	}
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for c := range s.conns {
		c.wakeIfIdle()
	}
	s.mu.Unlock()

	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	<-finished
	return ctx.Err()
}

// conn is one accepted connection. Its goroutine reads frames; each
// message is handled on a goroutine of its own (within the server's worker
// bound) once the earlier messages it must follow are done, and a writer
// goroutine writes the acknowledgements in the order the messages came.
// At most Pipeline messages are read and not yet acknowledged, so a
// stop-and-wait sender (the usual MLLP peer) sees strict request/response.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	idle   bool // waiting for a frame to start (guarded by s.mu)
}

// job is one received message on its way to its acknowledgement.
type job struct {
	order // the patients and visits it is about
	h     header
	start time.Time
	deps  []*job        // earlier messages of the connection this one must follow
	done  chan struct{} // closed once ack is set
	ack   []byte        // nil: no acknowledgement can be given (Handler failed)
}

// wakeIfIdle interrupts a connection waiting between frames so it sees the
// shutdown; a connection inside a frame finishes it first. Called with
// s.mu held.
func (c *conn) wakeIfIdle() {
	if c.idle {
		_ = c.nc.SetReadDeadline(time.Now())
	}
}

// setIdle marks the connection as between frames (arming the idle
// timeout under the same lock Shutdown takes, so Shutdown's wake-up cannot
// be overwritten) or inside one; it reports false when the server is
// shutting down and the connection should close instead.
func (c *conn) setIdle(idle bool) bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.idle = idle
	if idle && !c.s.closing {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
	}
	return !c.s.closing
}

func (c *conn) serve() {
	s := c.s
	s.met.connections.Inc()
	defer func() {
		_ = c.nc.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.met.connections.Dec()
		<-s.slots
		s.wg.Done()
	}()
	log := s.log.With("remote", c.remote)
	log.Debug("mllp connection opened")
	window := make(chan struct{}, s.cfg.Pipeline)
	jobs := make(chan *job, s.cfg.Pipeline)
	written := make(chan struct{})
	go func() {
		defer close(written)
		c.writeAcks(log, jobs, window)
	}()
	c.read(log, jobs, window)
	close(jobs)
	<-written
}

// read receives frames until the peer stops, a framing error, or
// shutdown, and queues a job per message.
func (c *conn) read(log *slog.Logger, jobs chan<- *job, window chan struct{}) {
	s := c.s
	r := NewReader(c.nc, s.cfg.MaxMessageBytes)
	var inflight []*job
	for {
		window <- struct{}{} // released when the ACK is written
		if !c.setIdle(true) {
			log.Debug("mllp connection closed by shutdown")
			return
		}
		skipped, garbage, err := r.WaitStart()
		if err != nil {
			c.endBetweenFrames(log, err, garbage)
			return
		}
		// A start block that arrived as shutdown began is still served:
		// the sender is mid-message and its ACK costs little.
		c.setIdle(false)
		if garbage > 0 {
			s.met.frameErrors.WithLabelValues("garbage").Inc()
			log.Warn("mllp bytes outside a frame skipped", "bytes", skipped)
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
		j := &job{start: time.Now(), done: make(chan struct{})}
		restarted := r.Restarted
		msg, err := r.ReadMessage()
		if r.Restarted != restarted {
			s.met.frameErrors.WithLabelValues("restarted").Inc()
			log.Warn("mllp frame abandoned by a new start block")
		}
		var tooLarge *TooLargeError
		switch {
		case err == nil:
			j.h = peekHeader(msg)
			j.order = orderOf(msg)
			inflight = pending(inflight)
			for _, p := range inflight {
				if j.follows(&p.order) {
					j.deps = append(j.deps, p)
				}
			}
			inflight = append(inflight, j)
			go c.handle(log, j, msg)
		case errors.As(err, &tooLarge):
			s.met.frameErrors.WithLabelValues("too-large").Inc()
			j.h = peekHeader(tooLarge.Head)
			log.Warn("mllp message too large", "limit", tooLarge.Limit, "control_id", j.h.controlID, "sender", j.h.sender)
			if s.cfg.Reject != nil {
				j.ack = s.cfg.Reject(tooLarge.Head, fmt.Sprintf("message exceeds %d bytes", tooLarge.Limit))
			}
			close(j.done)
		default:
			reason := "read-error"
			if errors.Is(err, ErrTruncated) {
				reason = "truncated"
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				reason = "timeout"
			}
			s.met.frameErrors.WithLabelValues(reason).Inc()
			log.Warn("mllp frame not completed; nothing acknowledged", "reason", reason, "error", err)
			return
		}
		jobs <- j
		// Only an oversize job's ack is the reader's to look at; others
		// belong to their handler goroutine.
		if tooLarge != nil && j.ack == nil {
			return // no Reject: close rather than leave the sender waiting
		}
	}
}

// pending drops the jobs that are done.
func pending(js []*job) []*job {
	out := js[:0]
	for _, j := range js {
		select {
		case <-j.done:
		default:
			out = append(out, j)
		}
	}
	return out
}

// writeAcks writes the acknowledgements in message order. When one cannot
// be given or written, the connection is closed (later ACKs would answer
// the wrong messages) and the remaining jobs are only waited for.
func (c *conn) writeAcks(log *slog.Logger, jobs <-chan *job, window <-chan struct{}) {
	s := c.s
	var out []byte
	broken := false
	for j := range jobs {
		<-j.done
		if !broken && j.ack == nil {
			broken = true
			_ = c.nc.Close()
		}
		if !broken {
			out = AppendFrame(out[:0], j.ack)
			_ = c.nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if _, err := c.nc.Write(out); err != nil {
				// The message may be applied; the sender resends it and the
				// Handler's duplicate detection answers the same ACK.
				log.Warn("mllp ack not delivered", "control_id", j.h.controlID, "sender", j.h.sender, "error", err)
				broken = true
				_ = c.nc.Close()
			} else {
				code := ackCode(j.ack)
				s.met.observe(code, time.Since(j.start))
				if code == "AA" || code == "CA" {
					log.Debug("mllp message acknowledged", "control_id", j.h.controlID, "sender", j.h.sender, "type", j.h.msgType, "ack", code)
				} else {
					log.Info("mllp message refused", "control_id", j.h.controlID, "sender", j.h.sender, "type", j.h.msgType, "ack", code)
				}
			}
		}
		<-window
	}
}

// handle runs the Handler for j once the messages it follows are done,
// within the worker bound. A Handler that panics or returns nothing leaves
// j.ack nil.
func (c *conn) handle(log *slog.Logger, j *job, msg []byte) {
	s := c.s
	defer close(j.done)
	for _, d := range j.deps {
		<-d.done
	}
	j.deps = nil
	s.workers <- struct{}{}
	defer func() { <-s.workers }()
	defer func() {
		if p := recover(); p != nil {
			s.met.frameErrors.WithLabelValues("handler-panic").Inc()
			log.Error("mllp handler panicked; message not acknowledged", "control_id", j.h.controlID, "sender", j.h.sender, "panic", fmt.Sprint(p))
			j.ack = nil
		}
	}()
	ack := s.cfg.Handler.HandleER7(s.ctx, msg)
	if len(ack) == 0 {
		log.Error("mllp handler returned no acknowledgement", "control_id", j.h.controlID, "sender", j.h.sender)
		return
	}
	j.ack = ack
}

// endBetweenFrames logs why a connection ended while no frame was open.
func (c *conn) endBetweenFrames(log *slog.Logger, err error, garbage int) {
	s := c.s
	switch {
	case errors.Is(err, io.EOF):
		log.Debug("mllp connection closed by peer")
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			log.Debug("mllp idle connection closed by shutdown")
		} else {
			s.met.frameErrors.WithLabelValues("idle").Inc()
			log.Debug("mllp idle connection closed")
		}
	case errors.Is(err, ErrNoStartBlock), errors.Is(err, ErrTruncated):
		s.met.frameErrors.WithLabelValues("garbage").Inc()
		log.Warn("mllp peer sent bytes that are not MLLP frames; closing", "garbage_bytes", garbage)
	default:
		log.Debug("mllp connection read error", "error", err)
	}
}
