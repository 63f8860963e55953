package main

import (
	"context"

	"github.com/spf13/pflag"
)

// dashboardOptions are the serve flags of the /ui/ dashboard (issue 8).
type dashboardOptions struct{}

func (o *dashboardOptions) flags(f *pflag.FlagSet) {}

// mountDashboard mounts the /ui/ dashboard (issue 8).
func mountDashboard(ctx context.Context, env *serveEnv, o dashboardOptions) (stop func(), err error) {
	return nil, nil
}
