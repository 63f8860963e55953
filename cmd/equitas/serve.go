package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// mountAreas mounts the feature areas in dependency order; each returns a
// stop function run on shutdown in reverse order.
func mountAreas(ctx context.Context, env *serveEnv, o serveOptions) ([]func(), error) {
	var stops []func()
	steps := []func() (func(), error){
		func() (func(), error) { return mountAttribution(ctx, env, o.attribution) },
		func() (func(), error) { return mountMeasures(ctx, env, o.measures) },
		func() (func(), error) { return mountCareGaps(ctx, env, o.careGaps) },
		func() (func(), error) {
			a, stop, err := mountAlerts(ctx, env, o.alerts)
			env.alerts = a
			return stop, err
		},
		func() (func(), error) { return mountADT(ctx, env, o.adt) },
		func() (func(), error) { return mountEquity(ctx, env, o.equity) },
		func() (func(), error) { return mountDashboard(ctx, env, o.dashboard) },
	}
	for _, step := range steps {
		stop, err := step()
		if stop != nil {
			stops = append(stops, stop)
		}
		if err != nil {
			return stops, err
		}
	}
	return stops, nil
}

// serveOptions are the flags of `equitas serve`; each also reads an
// EQUITAS_* environment variable (the flag wins when both are set).
type serveOptions struct {
	addr, data, baseURL, logLevel, logFormat string
	maxBody                                  int64
	shutdownTimeout                          time.Duration
	bulk                                     bulkOptions
	attribution                              attributionServeOptions
	measures                                 measureServeOptions
	careGaps                                 careGapsOptions
	alerts                                   alertsOptions
	adt                                      adtOptions
	equity                                   equityOptions
	dashboard                                dashboardOptions
}

// serveEnv is what every feature area needs to mount itself on the server.
type serveEnv struct {
	log     *slog.Logger
	st      store.Store
	srv     *rest.Server
	bulk    *bulkServer
	addr    string
	data    string
	baseURL string        // --base-url, empty when derived from each request
	alerts  *alertsServer // set before the ADT intake mounts, which notifies it
	// measures is the server's one measure catalog (compiled measures are
	// large): set by mountMeasures, used by care gaps and equity reports.
	measures *catalog.Catalog
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the FHIR R4 server",
		Long: `Run the FHIR R4 REST server (base path /fhir) on the embedded badger store,
with /healthz and Prometheus /metrics. Every flag can also be set through the
environment: --addr as EQUITAS_ADDR, --data as EQUITAS_DATA, --base-url as
EQUITAS_BASE_URL, and so on.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return flagsFromEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address")
	f.StringVar(&o.data, "data", "./data", "data directory (created if missing)")
	f.StringVar(&o.baseURL, "base-url", "", "public FHIR base URL for links and Location headers (default: derived from the request Host, http://HOST/fhir)")
	f.Int64Var(&o.maxBody, "max-body", rest.DefaultMaxBodyBytes, "maximum request body in bytes")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&o.logFormat, "log-format", "json", "log format: json or text")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to wait for in-flight requests on shutdown")
	o.bulk.flags(f)
	o.attribution.flags(f)
	o.measures.flags(f)
	o.careGaps.flags(f)
	o.alerts.flags(f)
	o.adt.flags(f)
	o.equity.flags(f)
	o.dashboard.flags(f)
	return cmd
}

// flagsFromEnv sets every flag not given on the command line from
// EQUITAS_<FLAG_NAME> (dashes become underscores).
func flagsFromEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		name := "EQUITAS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
		}
	})
	return err
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be json or text, not %q", format)
}

func runServe(ctx context.Context, o serveOptions) error {
	log, err := newLogger(o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	st, err := badgerstore.Open(ctx, o.data, badgerstore.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("open store %s: %w", o.data, err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing store", "error", err)
		}
	}()
	bulk, err := newBulk(log, st, o.addr, o.data, o.bulk)
	if err != nil {
		return err
	}
	srv, err := rest.New(rest.Config{Store: st, BaseURL: o.baseURL, Logger: log, MaxBodyBytes: o.maxBody, Version: version(), Authenticate: bulk.authenticate})
	if err != nil {
		return err
	}
	if err := bulk.mount(ctx, srv); err != nil {
		return err
	}
	defer bulk.stop()
	env := &serveEnv{log: log, st: st, srv: srv, bulk: bulk, addr: o.addr, data: o.data, baseURL: o.baseURL}
	stops, err := mountAreas(ctx, env, o)
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	if err != nil {
		return err
	}
	if err := bulk.start(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		// Bounds slow uploads; a 16 MiB Bundle needs only ~1 Mbit/s.
		ReadTimeout: 2 * time.Minute,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("serving FHIR R4", "addr", ln.Addr().String(), "base", "http://"+ln.Addr().String()+rest.BasePath, "data", o.data)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", o.shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// version is the main module version stamped by the Go toolchain.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
