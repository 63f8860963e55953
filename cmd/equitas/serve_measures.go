package main

import (
	"context"

	"github.com/spf13/pflag"
)

// measureServeOptions are the serve flags of $evaluate-measure, $submit-data and $data-requirements, and measure loading (issue 8).
type measureServeOptions struct{}

func (o *measureServeOptions) flags(f *pflag.FlagSet) {}

// mountMeasures mounts $evaluate-measure, $submit-data and $data-requirements, and measure loading (issue 8).
func mountMeasures(ctx context.Context, env *serveEnv, o measureServeOptions) (stop func(), err error) {
	return nil, nil
}
