package main

import (
	"context"

	"github.com/spf13/pflag"
)

// adtOptions are the serve flags of the HL7 v2 MLLP listener, $hl7v2 and $process-message (issue 7).
type adtOptions struct{}

func (o *adtOptions) flags(f *pflag.FlagSet) {}

// mountADT mounts the HL7 v2 MLLP listener, $hl7v2 and $process-message (issue 7).
func mountADT(ctx context.Context, env *serveEnv, o adtOptions) (stop func(), err error) {
	return nil, nil
}
