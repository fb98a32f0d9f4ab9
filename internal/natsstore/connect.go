package natsstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// The environment variables Connect reads for credentials, NATS's own
// means (the nats CLI reads the same names): a creds file (JWT and nkey
// seed), an nkey seed file, or a token (or a file holding one). User and
// password may also be in the URL. None of them is ever logged.
const (
	EnvCreds     = "NATS_CREDS"
	EnvNKey      = "NATS_NKEY"
	EnvToken     = "NATS_TOKEN"
	EnvTokenFile = "NATS_TOKEN_FILE"
)

// IsURL reports whether store names a NATS cluster (nats:// or tls://)
// rather than being empty (the Badger data dir).
func IsURL(store string) bool {
	return strings.HasPrefix(store, "nats://") || strings.HasPrefix(store, "tls://")
}

// Redact returns the servers of a store URL without credentials, for
// logs and messages.
func Redact(servers string) string {
	var out []string
	for _, s := range strings.Split(servers, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			out = append(out, "(unparsable URL)")
			continue
		}
		u.User = nil
		out = append(out, u.String())
	}
	return strings.Join(out, ",")
}

// Connect connects to the servers of a store URL
// ("nats://host:4222,host2:4222"), with credentials from getenv. It
// reconnects on its own for as long as the process runs.
func Connect(servers string, getenv func(string) string, log *slog.Logger) (*nats.Conn, error) {
	if !IsURL(servers) {
		return nil, fmt.Errorf("store %q is not a NATS URL (nats://host:4222[,host2:4222…])", Redact(servers))
	}
	opts := []nats.Option{
		nats.Name("relay-git-sync"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(5 * time.Second),
	}
	if log != nil {
		opts = append(opts,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					log.Warn("disconnected from the NATS store", "err", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to the NATS store", "server", Redact(nc.ConnectedUrl())) }))
	}
	n := 0
	if p := getenv(EnvCreds); p != "" {
		opts = append(opts, nats.UserCredentials(p))
		n++
	}
	if p := getenv(EnvNKey); p != "" {
		o, err := nats.NkeyOptionFromSeed(p)
		if err != nil {
			return nil, fmt.Errorf("%s: reading the nkey seed file: %w", EnvNKey, err)
		}
		opts = append(opts, o)
		n++
	}
	tok := getenv(EnvToken)
	if p := getenv(EnvTokenFile); p != "" {
		if tok != "" {
			return nil, fmt.Errorf("set %s or %s, not both", EnvToken, EnvTokenFile)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvTokenFile, err)
		}
		if tok = strings.TrimSpace(string(b)); tok == "" {
			return nil, fmt.Errorf("%s: %s is empty", EnvTokenFile, p)
		}
	}
	if tok != "" {
		opts = append(opts, nats.Token(tok))
		n++
	}
	if n > 1 {
		return nil, errors.New("more than one NATS credential is set (NATS_CREDS, NATS_NKEY, NATS_TOKEN[_FILE]): set one")
	}
	nc, err := nats.Connect(servers, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the NATS store at %s: %w", Redact(servers), err)
	}
	return nc, nil
}
