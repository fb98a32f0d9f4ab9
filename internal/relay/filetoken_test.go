package relay_test

import (
	"context"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// RELAY_FILE_TOKEN_COMMAND signs the file tokens uploads need, run as
// relay-server's `relay sign --auth <private key>` is (here the fake's stand-in for it);
// a command that fails or prints no token is an error that repeats neither
// the command nor what it printed.
func TestFileTokenCommand(t *testing.T) {
	testreq.Node(t)
	s := relaytest.NewServer(relaytest.Options{APIKey: testKey})
	defer s.Close()
	t.Setenv("RELAY_SERVER_API_KEY", testKey) // what the command signs with
	r, fid := s.NewRelay(), "0b8e7c3a-9d4f-4e21-8a6b-5c3d2e1f0a9b"
	data := []byte("\x89PNG an attachment")
	ctx := context.Background()

	getenv := func(cmd string) func(string) string {
		return func(k string) string {
			if k == relay.EnvFileTokenCommand {
				return cmd
			}
			return ""
		}
	}
	if relay.FileTokensFromEnv(getenv("  ")) != nil {
		t.Fatal("a blank command was taken")
	}
	c := newClient(t, s, func(o *relay.ClientOptions) { o.FileToken = relay.FileTokensFromEnv(getenv(s.SignCommand())) })
	if err := c.UploadFile(ctx, r, fid, sha(data), data); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	if _, err := c.FetchFile(ctx, r, fid, sha(data), &got); err != nil || got.String() != string(data) {
		t.Fatalf("download after the upload: %q %v", got.String(), err)
	}

	for cmd, want := range map[string]string{
		"echo cannot read the key >&2; exit 3 # key-in-command": "failed (exit status 3): cannot read the key",
		"echo not-json-token-xyz # key-in-command":              "printed no JSON object with a token",
		`echo '{"token":""}' # key-in-command`:                  "printed no JSON object with a token",
	} {
		c := newClient(t, s, func(o *relay.ClientOptions) { o.FileToken = relay.FileTokenCommand(cmd) })
		err := c.UploadFile(ctx, r, fid, sha([]byte("other")), []byte("other"))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "key-in-command") || strings.Contains(err.Error(), "not-json-token-xyz") {
			t.Errorf("command %q: %v, want an error saying %q", cmd, err, want)
		}
	}
}
