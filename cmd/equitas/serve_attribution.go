package main

import (
	"context"

	"github.com/spf13/pflag"
)

// attributionServeOptions are the serve flags of ATR list operations, $attribute and provider-scoped access (issue 6).
type attributionServeOptions struct{}

func (o *attributionServeOptions) flags(f *pflag.FlagSet) {}

// mountAttribution mounts ATR list operations, $attribute and provider-scoped access (issue 6).
func mountAttribution(ctx context.Context, env *serveEnv, o attributionServeOptions) (stop func(), err error) {
	return nil, nil
}
