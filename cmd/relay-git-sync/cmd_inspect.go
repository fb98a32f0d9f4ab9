package main

import "github.com/spf13/cobra"

// newInspectCmd groups debugging commands that show what relay-git-sync sees
// in Relay data (documents, snapshots) without changing anything.
func newInspectCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show decoded Relay data for debugging (read-only)",
		Args:  cobra.NoArgs,
		RunE:  requireSubcommand,
	}
	cmd.AddCommand(newInspectYdocCmd(opts))
	return cmd
}
