// Package rest is the FHIR R4 REST API of Equitas: the HTTP server
// assembly (routing, content negotiation, logging, metrics, panic
// recovery) and handlers that translate HTTP into fhir/interaction calls
// and results back into FHIR responses. Resources are served as the store
// holds them; Bundles are streamed from the stored bytes.
//
// Later features mount onto a Server: Operation registers $operations at
// the system, type or instance level (listed in the CapabilityStatement),
// Render completes stored resources on the way out (ATR Group members),
// SMART declares the authorization in the CapabilityStatement, FHIR adds
// routes under the FHIR base and Router adds routes at the root. Every
// handler applies the caller's access.Principal: scopes, and for
// organization-bound callers the visibility rule access.Principal.Sees.
package rest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/interaction"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
)

// BasePath is where the FHIR API lives under the server root.
const BasePath = "/fhir"

// DefaultMaxBodyBytes limits request bodies unless Config says otherwise.
const DefaultMaxBodyBytes = 16 << 20

// Config assembles a Server.
type Config struct {
	Store store.Store
	// BaseURL is the absolute FHIR base URL used in Location headers,
	// fullUrls and links (e.g. https://fhir.example.org/fhir). When empty
	// it is derived from each request's Host.
	BaseURL string
	Logger  *slog.Logger
	// MaxBodyBytes bounds request bodies (413 beyond); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Registry receives the server's metrics; nil creates one owned by the
	// server (exposed on /metrics either way). The global default registry
	// is never used.
	Registry *prometheus.Registry
	// Authenticate wraps the FHIR routes and must put an access.Principal
	// in the request context (or answer 401 itself). Nil serves every
	// request as access.Anonymous() (auth disabled).
	Authenticate func(http.Handler) http.Handler
	// Version is reported in the CapabilityStatement.
	Version string
}

// Server is the assembled HTTP handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	svc     *interaction.Service
	root    chi.Router
	fhir    chi.Router
	metrics *metrics
	reg     *prometheus.Registry
	panics  atomic.Int64
	reqSeq  atomic.Uint64 // numbers generated request ids
	started time.Time

	opsMu        sync.RWMutex
	ops          map[opKey]Operation
	instantiates []string
	renderers    map[string]Renderer
	tokenURL     func(base string) string // SMART token endpoint; nil without auth

	capMu sync.Mutex
	caps  map[string][]byte // CapabilityStatement per base URL
}

// New assembles a server over cfg.Store.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("rest: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	v, err := validate.New()
	if err != nil {
		return nil, fmt.Errorf("rest: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		svc:     interaction.New(cfg.Store, v),
		reg:     cfg.Registry,
		ops:     map[opKey]Operation{},
		caps:    map[string][]byte{},
		started: time.Now(),
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.metrics, err = newMetrics(s.reg, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("rest: register metrics: %w", err)
	}

	root := chi.NewRouter()
	root.Use(s.requestID, s.observe, s.recoverer)
	root.NotFound(func(w http.ResponseWriter, r *http.Request) {
		outcome.Error(w, http.StatusNotFound, "not-found", "no such endpoint")
	})
	root.MethodNotAllowed(methodNotAllowed)
	root.Get("/healthz", s.healthz)
	root.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))

	fhir := chi.NewRouter()
	fhir.Use(middleware.GetHead)
	if cfg.Authenticate != nil {
		fhir.Use(cfg.Authenticate)
	} else {
		fhir.Use(anonymous)
	}
	fhir.Use(s.negotiate)
	fhir.NotFound(func(w http.ResponseWriter, r *http.Request) {
		outcome.Error(w, http.StatusNotFound, "not-found", "no such FHIR endpoint")
	})
	fhir.MethodNotAllowed(methodNotAllowed)
	s.routes(fhir)
	root.Mount(BasePath, fhir)
	s.root, s.fhir = root, fhir
	return s, nil
}

func (s *Server) routes(r chi.Router) {
	r.Get("/metadata", s.capabilities)
	r.Post("/", s.bundle)
	r.Get("/_history", s.systemHistory)
	r.HandleFunc("/{type}", s.typeLevel)
	r.Post("/{type}/_search", s.searchPost)
	r.Get("/{type}/_history", s.typeHistory)
	r.HandleFunc("/{type}/{id}", s.instance)
	r.Get("/{type}/{id}/_history", s.instanceHistory)
	r.Get("/{type}/{id}/_history/{vid}", s.vread)
	r.HandleFunc("/{type}/{id}/{op}", s.instanceOperation)
}

// ServeHTTP serves the root router.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.root.ServeHTTP(w, r) }

// Router is the root router, for endpoints outside the FHIR base (e.g. an
// OAuth token endpoint). Add routes before serving.
func (s *Server) Router() chi.Router { return s.root }

// FHIR is the router under BasePath, for extra FHIR-base routes (e.g. bulk
// status polling). Its routes get authentication and content negotiation.
func (s *Server) FHIR() chi.Router { return s.fhir }

// Service is the interaction layer the handlers use.
func (s *Server) Service() *interaction.Service { return s.svc }

// Registry is the metrics registry served on /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Panics counts requests that ended in the recover middleware; tests
// assert it stays zero for bad input.
func (s *Server) Panics() int64 { return s.panics.Load() }

// Base returns the absolute FHIR base URL for r.
func (s *Server) Base(r *http.Request) string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + BasePath
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	// A cheap store round trip proves the store is open and readable.
	if _, err := s.cfg.Store.KV().Get(ctx, "healthz/probe"); err != nil && !errors.Is(err, store.ErrNotFound) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"status":"ok","uptimeSeconds":%d}`, int(time.Since(s.started).Seconds()))
}

func anonymous(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if access.FromContext(r.Context()) == nil {
			r = r.WithContext(access.WithPrincipal(r.Context(), access.Anonymous()))
		}
		next.ServeHTTP(w, r)
	})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	outcome.Error(w, http.StatusMethodNotAllowed, "not-supported", "method "+r.Method+" is not allowed here")
}

// requestInfo is filled in by handlers for logs and metrics.
type requestInfo struct {
	id          string
	interaction string
	rtype       string
}

type infoKey struct{}

func info(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// label records the FHIR interaction and resource type of the request.
func label(r *http.Request, interaction, rtype string) {
	ri := info(r.Context())
	ri.interaction, ri.rtype = interaction, rtype
}

func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneID(id) {
			id = fmt.Sprintf("%x-%d", s.started.UnixNano()&0xffffff, s.reqSeq.Add(1))
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), infoKey{}, &requestInfo{id: id})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func saneID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// observe logs every request (route pattern, never the query string, so no
// search values reach the logs) and records metrics.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		d := time.Since(start)
		ri := info(r.Context())
		route := ""
		if rc := chi.RouteContext(r.Context()); rc != nil {
			route = rc.RoutePattern()
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		inter := ri.interaction
		if inter == "" {
			inter = "other"
		}
		s.metrics.observe(inter, ri.rtype, status, d)
		lvl := slog.LevelInfo
		if status >= 500 {
			lvl = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), lvl, "request",
			slog.String("request_id", ri.id),
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.String("interaction", inter),
			slog.String("type", ri.rtype),
			slog.Int("status", status),
			slog.Int("bytes", ww.BytesWritten()),
			slog.Float64("duration_ms", float64(d.Microseconds())/1000))
	})
}

// recoverer is the last resort: a panic is logged with its stack and
// answered with a 500 OperationOutcome. Bad input must never get here.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.panics.Add(1)
				s.metrics.panics.Inc()
				s.log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
					slog.String("request_id", info(r.Context()).id),
					slog.String("panic", fmt.Sprint(v)),
					slog.String("stack", string(debug.Stack())))
				outcome.Error(w, http.StatusInternalServerError, "exception", "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// fail writes err: client errors keep their status and issues; anything
// else is logged and becomes an opaque 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	err = interaction.StoreError(err)
	var he *outcome.HTTPError
	if errors.As(err, &he) {
		outcome.Write(w, he.Status, outcome.FromIssues(he.Issues))
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
		slog.String("request_id", info(r.Context()).id), slog.String("error", err.Error()))
	outcome.Error(w, http.StatusInternalServerError, "exception", "internal error")
}
