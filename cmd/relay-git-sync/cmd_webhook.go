package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/spf13/cobra"
)

func newWebhookCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Webhook secret commands",
		Args:  cobra.NoArgs,
		RunE:  requireSubcommand,
	}
	var whsec bool
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "Print a new webhook secret",
		Long: `Print a new random webhook secret and the export line for WEBHOOK_SECRET.

The default is a shared secret: give the same value to the Relay Server as the
webhook's auth_token (it sends "Authorization: Bearer <secret>"). With --whsec
the secret is a Standard Webhooks signing secret (whsec_…) for senders that
sign their requests.`,
		Example: `  relay-git-sync webhook keygen
  # on the Relay Server:
  RELAY_SERVER_WEBHOOK_CONFIG='[{"url":"https://sync.example.com/webhooks","auth_token":"<secret>"}]'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			secret := base64.RawURLEncoding.EncodeToString(b)
			if whsec {
				secret = "whsec_" + base64.StdEncoding.EncodeToString(b)
			}
			fmt.Fprintln(opts.stdout, secret)
			fmt.Fprintf(opts.stdout, "export WEBHOOK_SECRET=%s\n", secret)
			return nil
		},
	}
	keygen.Flags().BoolVar(&whsec, "whsec", false, "make a Standard Webhooks (whsec_) signing secret")
	cmd.AddCommand(keygen)
	return cmd
}
