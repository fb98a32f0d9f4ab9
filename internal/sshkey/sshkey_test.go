package sshkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func newKeyPEM(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}

func TestParse(t *testing.T) {
	text := newKeyPEM(t)
	k, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.AuthorizedKey(), "ssh-ed25519 AAAA") || strings.Contains(k.AuthorizedKey(), "\n") {
		t.Errorf("public key %q", k.AuthorizedKey())
	}
	// Flattened with literal \n, as env files often carry it.
	k2, err := Parse(strings.ReplaceAll(strings.TrimSpace(text), "\n", `\n`))
	if err != nil {
		t.Fatal(err)
	}
	if k2.AuthorizedKey() != k.AuthorizedKey() {
		t.Error("flattened key parsed differently")
	}
	if _, err := Parse(""); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("empty: %v", err)
	}
	if _, err := Parse("not a key"); err == nil || !strings.Contains(err.Error(), "not a valid private key") {
		t.Errorf("garbage: %v", err)
	}
}
