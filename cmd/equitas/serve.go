package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newServeCmd is a placeholder until the serve command lands.
func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "not yet available",
		RunE:  func(*cobra.Command, []string) error { return errors.New("serve: not yet implemented") },
	}
}
