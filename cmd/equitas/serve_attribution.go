package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/equitas/equitas/fhir/atrapi"
	"github.com/equitas/equitas/fhir/attribution"
)

// attributionServeOptions are the serve flags of the ATR list operations
// and Group/$attribute (issue 6). Provider-scoped access is wired in
// serve_bulk.go.
type attributionServeOptions struct{}

func (o *attributionServeOptions) flags(f *pflag.FlagSet) {}

// mountAttribution mounts $member-add, $member-remove,
// $attribution-status, $confirm-attribution-list and Group/$attribute
// (with its status URL [base]/attribution-jobs/{id}).
func mountAttribution(ctx context.Context, env *serveEnv, o attributionServeOptions) (stop func(), err error) {
	lists := attribution.NewLists(env.st)
	jobs, err := attribution.NewJobs(ctx, lists, env.log)
	if err != nil {
		return nil, fmt.Errorf("attribution jobs: %w", err)
	}
	atrapi.New(atrapi.Config{Store: env.st, Lists: lists, Jobs: jobs, Base: env.srv.Base, Logger: env.log}).Mount(env.srv)
	return jobs.Close, nil
}
