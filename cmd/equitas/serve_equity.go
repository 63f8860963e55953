package main

import (
	"context"

	"github.com/spf13/pflag"
)

// equityOptions are the serve flags of $equity-report (issue 8).
type equityOptions struct{}

func (o *equityOptions) flags(f *pflag.FlagSet) {}

// mountEquity mounts $equity-report (issue 8).
func mountEquity(ctx context.Context, env *serveEnv, o equityOptions) (stop func(), err error) {
	return nil, nil
}
