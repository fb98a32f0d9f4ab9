package mirror

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// The embedded host keys are the ones whose SHA256 fingerprints the forges
// publish (github.com: docs.github.com "GitHub's SSH key fingerprints";
// gitlab.com: docs.gitlab.com "SSH host keys fingerprints"; bitbucket.org:
// support.atlassian.com "Configure SSH and two-step verification").
func TestDefaultKnownHostsFingerprints(t *testing.T) {
	published := map[string]bool{
		"github.com SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU":    true, // Ed25519
		"github.com SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM":    true, // ECDSA
		"github.com SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s":    true, // RSA
		"gitlab.com SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8":    true, // Ed25519
		"gitlab.com SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw":    true, // ECDSA
		"gitlab.com SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ":    true, // RSA
		"bitbucket.org SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM": true, // Ed25519
		"bitbucket.org SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0": true, // ECDSA
		"bitbucket.org SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E": true, // RSA
	}
	seen := 0
	sc := bufio.NewScanner(strings.NewReader(DefaultKnownHosts))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		_, hosts, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got := strings.Join(hosts, ",") + " " + ssh.FingerprintSHA256(key)
		if !published[got] {
			t.Errorf("unexpected key %s", got)
		}
		seen++
	}
	if seen != len(published) {
		t.Errorf("%d keys, want %d", seen, len(published))
	}
}

func TestEnsureKnownHosts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p, err := EnsureKnownHosts(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != DefaultKnownHosts {
		t.Errorf("created file differs from the defaults")
	}
	// The operator's file is never touched.
	os.WriteFile(p, []byte("# mine\n"), 0o644)
	if _, err := EnsureKnownHosts(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "# mine\n" {
		t.Errorf("known_hosts was rewritten: %q", b)
	}
	if _, err := newHostKeys(p, filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing connector known_hosts was accepted")
	}
}
