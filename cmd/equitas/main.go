// Command equitas is the Equitas FHIR R4 gateway and quality-measure
// calculator: one binary with subcommands for the server, data loading,
// synthetic populations, measure evaluation and attribution.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "equitas:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "equitas",
		Short:         "FHIR R4 interoperability gateway and quality-measure calculator",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Each subcommand lives in its own file of this package.
	root.AddCommand(subcommands()...)
	return root
}
