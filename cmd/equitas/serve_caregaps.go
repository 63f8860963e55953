package main

import (
	"context"

	"github.com/spf13/pflag"
)

// careGapsOptions are the serve flags of $care-gaps (issue 8).
type careGapsOptions struct{}

func (o *careGapsOptions) flags(f *pflag.FlagSet) {}

// mountCareGaps mounts Measure/$care-gaps and the provider gap lists.
func mountCareGaps(ctx context.Context, env *serveEnv, o careGapsOptions) (stop func(), err error) {
	return nil, nil
}
