package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/equitas/equitas/fhir/measureapi"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/elm"
)

// measureServeOptions are the serve flags of $evaluate-measure,
// $data-requirements and $submit-data.
type measureServeOptions struct {
	reporter, reporterName string
	asyncOver              int
	workers                int
	profiles               string
}

func (o *measureServeOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.reporter, "measure-reporter", "", "reporter reference of MeasureReports, e.g. Organization/123 (a $evaluate-measure reporter parameter overrides it)")
	f.StringVar(&o.reporterName, "measure-reporter-name", "Equitas", "reporter display of MeasureReports when --measure-reporter is not set")
	f.IntVar(&o.asyncOver, "measure-async-over", 200000, "evaluate populations larger than this many patients asynchronously even without Prefer: respond-async (0: only on request)")
	f.IntVar(&o.workers, "measure-workers", 0, "parallel evaluators per $evaluate-measure (default GOMAXPROCS)")
	f.StringVar(&o.profiles, "measure-profiles", "meta", "profile matching of measure retrieves: meta (meta.profile tags), ignore, or infer")
}

// profileMode parses a --profiles / --measure-profiles value.
func profileMode(s string) (elm.ProfileMode, error) {
	switch s {
	case "meta":
		return elm.ProfileMetaTag, nil
	case "ignore":
		return elm.ProfileIgnore, nil
	case "infer":
		return elm.ProfileInfer, nil
	}
	return 0, fmt.Errorf("profiles %q: want meta, ignore or infer", s)
}

// mountMeasures mounts $evaluate-measure, $data-requirements and
// $submit-data over a catalog of the store's measures, and publishes the
// catalog in env for the areas mounted after it. Its async runner is
// registered here, before the job manager starts.
func mountMeasures(ctx context.Context, env *serveEnv, o measureServeOptions) (stop func(), err error) {
	mode, err := profileMode(o.profiles)
	if err != nil {
		return nil, fmt.Errorf("--measure-profiles: %w", err)
	}
	cat := catalog.New(env.st, catalog.Options{ELM: elm.Options{Profiles: mode}, Logger: env.log})
	env.measures = cat // shared with $care-gaps and the equity reports
	// Synchronous reports are staged on the data disk, not a tmpfs.
	tmp := filepath.Join(env.data, "measure-reports")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("measure reports dir: %w", err)
	}
	h, err := measureapi.New(measureapi.Options{
		Catalog: cat, Store: env.st, Jobs: env.bulk.jobs, Base: env.srv.Base,
		RequiresAccessToken: env.bulk.authenticate != nil,
		Reporter:            o.reporter, ReporterDisplay: reporterDisplay(o),
		AsyncOver: o.asyncOver, Workers: o.workers, TempDir: tmp, Logger: env.log,
	})
	if err != nil {
		return nil, err
	}
	h.Mount(env.srv)
	return nil, nil
}

func reporterDisplay(o measureServeOptions) string {
	if o.reporter != "" {
		return ""
	}
	return o.reporterName
}
