// Package sshkey reads the deploy key relay-git-sync pushes with from the
// SSH_PRIVATE_KEY environment variable, keeping it in memory.
package sshkey

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// EnvVar holds the private key text (PEM or OpenSSH format, no passphrase).
const EnvVar = "SSH_PRIVATE_KEY"

// ErrNotConfigured means SSH_PRIVATE_KEY is unset or empty.
var ErrNotConfigured = errors.New(EnvVar + " environment variable not configured")

// Key is a parsed private key.
type Key struct {
	Signer ssh.Signer
	// PEM is the key text as given, for transports that need bytes.
	PEM []byte
}

// Parse reads a private key. Keys pasted into environment variables often
// lose their line breaks or gain literal "\n"; both are repaired.
func Parse(text string) (*Key, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, ErrNotConfigured
	}
	if !strings.Contains(text, "\n") && strings.Contains(text, `\n`) {
		text = strings.ReplaceAll(text, `\n`, "\n")
	}
	pem := []byte(text + "\n")
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("%s: the key is passphrase-protected; give an unencrypted key", EnvVar)
		}
		return nil, fmt.Errorf("%s: not a valid private key: %w", EnvVar, err)
	}
	return &Key{Signer: signer, PEM: pem}, nil
}

// FromEnv parses the key in SSH_PRIVATE_KEY using getenv.
func FromEnv(getenv func(string) string) (*Key, error) { return Parse(getenv(EnvVar)) }

// AuthorizedKey returns the public key in authorized_keys form without a
// comment ("ssh-ed25519 AAAA…"), as the original printed it.
func (k *Key) AuthorizedKey() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Signer.PublicKey())))
}
