package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newMeasureCmd is a placeholder until the measure command lands.
func newMeasureCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "measure",
		Short: "not yet available",
		RunE:  func(*cobra.Command, []string) error { return errors.New("measure: not yet implemented") },
	}
}
