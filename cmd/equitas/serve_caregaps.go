package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/equitas/equitas/fhir/gapsapi"
	"github.com/equitas/equitas/measures/caregaps"
	"github.com/equitas/equitas/measures/catalog"
)

// careGapsOptions are the serve flags of $care-gaps (issue 8).
type careGapsOptions struct {
	reporter        string
	maxSyncPatients int
	notations       []string
}

func (o *careGapsOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.reporter, "care-gaps-reporter", "Organization/equitas", "Organization reference that reports gaps in care (MeasureReport.reporter, Composition.author)")
	f.IntVar(&o.maxSyncPatients, "care-gaps-max-sync", 5000, "largest population $care-gaps answers synchronously; larger ones need Prefer: respond-async")
	f.StringSliceVar(&o.notations, "care-gaps-notation", nil, "improvementNotation override per Measure, URL[|VERSION]=increase|decrease (repeatable); wins over the Measure's coding")
}

// notationMap parses --care-gaps-notation values.
func (o careGapsOptions) notationMap() (map[string]string, error) {
	out := map[string]string{}
	for _, v := range o.notations {
		url, code, ok := strings.Cut(v, "=")
		if !ok || url == "" || (code != "increase" && code != "decrease") {
			return nil, fmt.Errorf("--care-gaps-notation %q: want MEASURE_URL[|VERSION]=increase|decrease", v)
		}
		out[url] = code
	}
	return out, nil
}

// mountCareGaps mounts Measure/$care-gaps, Group/[id]/$care-gaps and
// their CSV gap lists, and registers the asynchronous runner.
func mountCareGaps(ctx context.Context, env *serveEnv, o careGapsOptions) (stop func(), err error) {
	notations, err := o.notationMap()
	if err != nil {
		return nil, err
	}
	// Share the server's catalog (one compiled copy of each measure);
	// a server without one gets its own.
	cat := env.measures
	if cat == nil {
		cat = catalog.New(env.st, catalog.Options{Logger: env.log})
	}
	svc := caregaps.New(env.st, cat, caregaps.Options{Reporter: o.reporter, Notations: notations, Logger: env.log})
	// Synchronous answers are spooled here; a crash may leave some behind.
	spool := filepath.Join(env.data, "care-gaps-spool")
	if err := os.RemoveAll(spool); err != nil {
		return nil, fmt.Errorf("care-gaps spool: %w", err)
	}
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("care-gaps spool: %w", err)
	}
	env.bulk.jobs.Register(caregaps.JobKind, svc.RunJob)
	h := gapsapi.New(svc, env.bulk.jobs, env.srv.Base, gapsapi.Options{
		MaxSyncPatients: o.maxSyncPatients, SpoolDir: spool,
		RequiresAccessToken: env.bulk.authenticate != nil, Logger: env.log,
	})
	h.Mount(env.srv)
	return nil, nil
}
