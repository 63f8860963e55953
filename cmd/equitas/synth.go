package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newSynthCmd is a placeholder until the synth command lands.
func newSynthCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "synth",
		Short: "not yet available",
		RunE:  func(*cobra.Command, []string) error { return errors.New("synth: not yet implemented") },
	}
}
