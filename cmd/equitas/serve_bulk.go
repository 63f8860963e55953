package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/equitas/equitas/bulk/export"
	"github.com/equitas/equitas/bulk/importjob"
	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/fhir/auth"
	"github.com/equitas/equitas/fhir/bulkapi"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
)

// bulkOptions are the `equitas serve` flags of Bulk Data and authorization.
type bulkOptions struct {
	auth           string
	jobDir         string
	exportFileSize int64
	jobTTL         time.Duration
	minPoll        time.Duration
	jobWorkers     int
	adminToken     string
	tokenTTL       time.Duration
	tokenRate      float64
	tokenBurst     int
	importHosts    []string
}

func (o *bulkOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.auth, "auth", "none", "authorization: none (only when listening on a loopback address) or smart (SMART Backend Services)")
	f.StringVar(&o.jobDir, "job-dir", "", "directory of bulk job files (default DATA/bulk)")
	f.Int64Var(&o.exportFileSize, "export-file-size", 64<<20, "split export NDJSON files at this many bytes")
	f.DurationVar(&o.jobTTL, "job-ttl", 24*time.Hour, "how long finished bulk jobs and their files are kept")
	f.DurationVar(&o.minPoll, "bulk-min-poll", time.Second, "status polls closer together than this get 429 (also the Retry-After)")
	f.IntVar(&o.jobWorkers, "job-workers", 2, "bulk jobs run at once")
	f.StringVar(&o.adminToken, "admin-token", "", "bearer token of the client admin API (/admin/clients); with --auth smart the API is off without it")
	f.DurationVar(&o.tokenTTL, "token-ttl", 5*time.Minute, "access-token lifetime (at most 5m)")
	f.Float64Var(&o.tokenRate, "token-rate", 1, "token requests per second allowed per registered client (per remote address for unknown clients); negative: unlimited")
	f.IntVar(&o.tokenBurst, "token-burst", 30, "token requests a client (or address) may make at once before --token-rate applies")
	f.StringSliceVar(&o.importHosts, "import-allow-hosts", nil, "hosts (host or host:port) $import and $bulk-submit may fetch from (default with --auth smart: none; with --auth none: any http(s) URL)")
}

// bulkServer is the Bulk Data and authorization part of `equitas serve`.
type bulkServer struct {
	o            bulkOptions
	log          *slog.Logger
	st           store.Store
	jobs         *job.Manager
	authenticate func(http.Handler) http.Handler // nil: anonymous (auth none)
	auth         *auth.Server                    // nil with --auth none
	srv          *rest.Server
	visibility   *access.Cache // what organization-bound clients see, per organization
	cancel       context.CancelFunc
	// ctx is the bulk server's lifetime (cancelled by stop): mount creates
	// it, start runs the job workers under it.
	ctx context.Context
	wg  sync.WaitGroup // background loops besides the job workers
}

// newBulk checks the auth mode against the listen address and prepares the
// job manager; mount wires it into the server and starts it.
func newBulk(log *slog.Logger, st store.Store, addr, dataDir string, o bulkOptions) (*bulkServer, error) {
	b := &bulkServer{o: o, log: log, st: st}
	b.visibility = newVisibility(st)
	switch o.auth {
	case "none":
		if !loopback(addr) {
			return nil, fmt.Errorf("--auth none is only allowed on a loopback address, not %q: use --auth smart", addr)
		}
	case "smart":
		as, err := auth.New(st.KV(), auth.Options{TokenURL: b.tokenURL, TokenTTL: o.tokenTTL, Visibility: b.visibility.Resolve, Logger: log,
			RateLimit:   auth.RateLimit{PerSecond: o.tokenRate, Burst: o.tokenBurst},
			PublicPaths: []string{rest.BasePath + "/metadata", rest.BasePath + "/.well-known/smart-configuration"}})
		if err != nil {
			return nil, err
		}
		b.auth, b.authenticate = as, as.Authenticate
	default:
		return nil, fmt.Errorf("--auth must be none or smart, not %q", o.auth)
	}
	if o.jobDir == "" {
		o.jobDir = filepath.Join(dataDir, "bulk")
	}
	jobs, err := job.NewManager(st.KV(), job.Options{Dir: o.jobDir, TTL: o.jobTTL, MinPoll: o.minPoll,
		MaxPerOwner: 4, Workers: o.jobWorkers, Logger: log})
	if err != nil {
		return nil, err
	}
	b.jobs = jobs
	return b, nil
}

// tokenURL is the token endpoint beside the FHIR base of r.
func (b *bulkServer) tokenURL(r *http.Request) string {
	return strings.TrimSuffix(b.srv.Base(r), rest.BasePath) + "/auth/token"
}

// mount registers the bulk operations and routes on srv; start starts the
// job manager once every area has registered its job kinds.
func (b *bulkServer) mount(ctx context.Context, srv *rest.Server) error {
	b.srv = srv
	kv := b.st.KV()
	ex := export.New(b.st, export.Options{MaxFileBytes: b.o.exportFileSize, Visibility: b.visibility.Resolve,
		Members: func(ctx context.Context, snap store.Snapshot, groupID string) ([]string, error) {
			return groupMembers(ctx, kv, snap, groupID)
		},
		Render: map[string]export.Renderer{"Group": func(ctx context.Context, res *store.Resource) ([]byte, error) {
			return renderGroup(ctx, kv, res, false)
		}}})
	b.jobs.Register(export.Kind, ex.Run)
	srv.Render("Group", func(ctx context.Context, res *store.Resource, w io.Writer, summary bool) error {
		return attribution.RenderGroup(ctx, kv, res, w, summary)
	})
	exports := bulkapi.New(b.st, b.jobs, srv.Base, b.authenticate != nil)
	exports.Mount(srv, b.authenticate)
	srv.Operation(rest.Operation{Name: "davinci-data-export", Level: rest.Instance, Types: []string{"Group"},
		Definition: export.DaVinciDataExportDefinition, Handler: exports.DaVinciExport()})
	v, err := validate.New()
	if err != nil {
		return err
	}
	im := importjob.New(b.st, v, importjob.Options{AllowURL: allowHosts(b.o.importHosts, b.auth != nil), Logger: b.log})
	b.jobs.Register(importjob.Kind, im.Run)
	subs := importjob.NewSubmissions(b.st, b.jobs)
	bulkapi.NewIngest(b.jobs, subs, srv.Base, b.authenticate != nil).Mount(srv)
	ctx, b.cancel = context.WithCancel(ctx)
	b.wg.Add(1)
	go b.expireSubmissions(ctx, subs)
	admin := auth.AdminOnly(b.o.adminToken)
	if b.auth != nil {
		srv.SMART(func(base string) string { return strings.TrimSuffix(base, rest.BasePath) + "/auth/token" })
		root := srv.Router()
		root.Post("/auth/token", b.auth.Token)
		// bulk-data-client looks at the host root, the spec at the base;
		// both are served outside content negotiation (always JSON).
		root.Get("/.well-known/smart-configuration", b.auth.Discovery)
		root.Get(rest.BasePath+"/.well-known/smart-configuration", b.auth.Discovery)
		if b.o.adminToken != "" {
			root.With(admin).Route("/admin", b.auth.AdminRoutes)
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.auth.Run(ctx, 10*time.Minute)
		}()
	} else {
		// Without auth (loopback only) the admin API is open, so
		// `equitas client add --server` can prepare a later smart start.
		as, err := auth.New(b.st.KV(), auth.Options{TokenURL: b.tokenURL, Logger: b.log})
		if err != nil {
			return err
		}
		srv.Router().With(admin).Route("/admin", as.AdminRoutes)
	}
	b.ctx = ctx
	return nil
}

// start resumes unfinished jobs and starts the job workers. It runs after
// every area has registered its job kinds, so a resumed job always finds
// its runner and no registration races the workers.
func (b *bulkServer) start() error {
	if err := b.jobs.Start(b.ctx); err != nil {
		b.stop()
		return err
	}
	return nil
}

// expireSubmissions removes closed submissions once their jobs expired.
func (b *bulkServer) expireSubmissions(ctx context.Context, subs *importjob.Submissions) {
	defer b.wg.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := subs.Expire(ctx, b.o.jobTTL); err != nil && ctx.Err() == nil {
				b.log.Warn("expiring bulk submissions", "error", err)
			}
		}
	}
}

// stop stops the job workers and waits for them, before the store closes;
// interrupted jobs resume at the next start.
func (b *bulkServer) stop() {
	if b.cancel != nil {
		b.cancel()
		b.jobs.Wait()
		b.wg.Wait()
	}
}

// allowHosts limits import sources to hosts. Without a list, a server with
// authentication fetches from nowhere: otherwise any client with a write
// scope could make it request internal URLs. A loopback-only server without
// auth (a developer's machine) fetches any http(s) URL.
func allowHosts(hosts []string, authenticated bool) func(*url.URL) error {
	if len(hosts) == 0 {
		if authenticated {
			return func(u *url.URL) error {
				return fmt.Errorf("fetching %s: this server has no --import-allow-hosts configured", u.Host)
			}
		}
		return importjob.HTTPOnly
	}
	listed := hostIn(hosts, "--import-allow-hosts")
	return func(u *url.URL) error {
		if err := importjob.HTTPOnly(u); err != nil {
			return err
		}
		return listed(u)
	}
}

// hostIn accepts URLs whose host (host:port, or host alone) is one of
// hosts, the value of flag, which the refusal names so an operator knows
// what to change.
func hostIn(hosts []string, flag string) func(*url.URL) error {
	return func(u *url.URL) error {
		if slices.Contains(hosts, u.Host) || slices.Contains(hosts, u.Hostname()) {
			return nil
		}
		return fmt.Errorf("host %s is not in %s", u.Host, flag)
	}
}

// loopback reports whether addr (host:port) listens only on a loopback
// interface; an empty host listens on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
