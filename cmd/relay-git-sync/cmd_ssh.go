package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relay-git-sync/relay-git-sync/internal/sshkey"
)

func newSSHCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ssh",
		Short: "SSH deploy key commands",
		Args:  cobra.NoArgs,
		RunE:  requireSubcommand,
	}
	cmd.AddCommand(newShowPubkeyCmd(opts, "show-pubkey"))
	return cmd
}

// newShowPubkeyCmd prints the public half of SSH_PRIVATE_KEY; it exists
// both as `ssh show-pubkey` and, as in the original, `show-pubkey`.
func newShowPubkeyCmd(opts *globalOptions, use string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: "Print the public key of SSH_PRIVATE_KEY, to add as a deploy key",
		Long: `Print the public key derived from the private key in SSH_PRIVATE_KEY, in
authorized_keys form. Add it as a deploy key with write access to the
repositories in git_connectors.toml.`,
		Example: `  export SSH_PRIVATE_KEY="$(cat ~/.ssh/relay_sync_ed25519)"
  relay-git-sync ssh show-pubkey`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := sshkey.FromEnv(opts.getenv)
			if err != nil {
				return fmt.Errorf("%w (generate one with: ssh-keygen -t ed25519 -N '' -f relay_sync_key; export SSH_PRIVATE_KEY=\"$(cat relay_sync_key)\")", err)
			}
			fmt.Fprintln(opts.stdout, k.AuthorizedKey())
			return nil
		},
	}
}
