package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/equitas/equitas/fhir/equityapi"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/equity"
)

// equityOptions are the serve flags of $equity-report (issue 8).
type equityOptions struct {
	sviTable, raceHierarchy string
	workers                 int
}

func (o *equityOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.sviTable, "equity-svi-table", "", "CSV of key,rpl_themes (tract FIPS, ZIP, \"County, ST\" or county → CDC/ATSDR SVI percentile) for the svi stratifier and the equity pool")
	f.StringVar(&o.raceHierarchy, "equity-race-hierarchy", "", "CSV of code,parent (the CDC REC hierarchy) to roll detailed race/ethnicity codes up to OMB categories")
	f.IntVar(&o.workers, "equity-workers", 0, "patients evaluated in parallel by $equity-report (0: GOMAXPROCS)")
}

// mountEquity mounts $equity-report (issue 8).
func mountEquity(ctx context.Context, env *serveEnv, o equityOptions) (stop func(), err error) {
	opts := equityapi.Options{Workers: o.workers, Logger: env.log.With("component", "equity-report")}
	if o.sviTable != "" {
		b, err := os.ReadFile(o.sviTable)
		if err != nil {
			return nil, fmt.Errorf("--equity-svi-table: %w", err)
		}
		if opts.SVI, err = equity.LoadSVITable(string(b)); err != nil {
			return nil, fmt.Errorf("--equity-svi-table %s: %w", o.sviTable, err)
		}
	}
	if o.raceHierarchy != "" {
		f, err := os.Open(o.raceHierarchy)
		if err != nil {
			return nil, fmt.Errorf("--equity-race-hierarchy: %w", err)
		}
		defer f.Close()
		if opts.Hierarchy, err = equity.LoadRaceHierarchy(f); err != nil {
			return nil, fmt.Errorf("--equity-race-hierarchy %s: %w", o.raceHierarchy, err)
		}
	}
	// The server's one catalog (mountMeasures sets it): compiled measures
	// are large, so equity reports share them with $evaluate-measure.
	ms := env.measures
	if ms == nil {
		ms = catalog.New(env.st, catalog.Options{Logger: env.log})
	}
	equityapi.New(env.st, ms, opts).Mount(env.srv)
	return nil, nil
}
