package main

import "github.com/spf13/cobra"

// subcommands lists every subcommand; add one line per new command file.
func subcommands() []*cobra.Command {
	return []*cobra.Command{}
}
