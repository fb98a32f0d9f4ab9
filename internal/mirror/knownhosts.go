package mirror

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
)

// DefaultKnownHosts holds the public host keys of github.com, gitlab.com and
// bitbucket.org, as published by each (see the file's header for where and
// when they were copied). EnsureKnownHosts writes it to a data dir that has
// no known_hosts file yet.
//
//go:embed default_known_hosts
var DefaultKnownHosts string

// KnownHostsFile is the data dir's known_hosts file.
const KnownHostsFile = "known_hosts"

// EnsureKnownHosts returns the path of dataDir's known_hosts file, creating
// it with DefaultKnownHosts when it does not exist. An existing file is
// never touched: the operator owns it.
func EnsureKnownHosts(dataDir string) (string, error) {
	path := filepath.Join(dataDir, KnownHostsFile)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("known_hosts: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", fmt.Errorf("known_hosts: %w", err)
	}
	tmp, err := os.CreateTemp(dataDir, ".known_hosts-*")
	if err != nil {
		return "", fmt.Errorf("known_hosts: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(DefaultKnownHosts); err != nil {
		tmp.Close()
		return "", fmt.Errorf("known_hosts: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("known_hosts: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("known_hosts: %w", err)
	}
	// Link rather than rename: a file created meanwhile by someone else wins.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("known_hosts: %w", err)
	}
	return path, nil
}

// HostKeyError is a host key check that failed: the server's key is not in
// any of Files (Changed false), or differs from the one there (Changed
// true: a man in the middle, or a server whose key changed).
type HostKeyError struct {
	Host        string // host:port as dialled
	Changed     bool
	Offered     string // key type and SHA256 fingerprint the server offered
	Files       []string
	AddCommand  string // a command that would add the host (unknown hosts)
	underlyingE error
}

func (e *HostKeyError) Error() string {
	files := strings.Join(e.Files, ", ")
	if e.Changed {
		return fmt.Sprintf("host key verification failed for %s: the server offered %s, which does not match the key in known_hosts (%s); refusing to connect: this is a man in the middle or a server whose key changed (if it did, replace its line in the file)",
			e.Host, e.Offered, files)
	}
	return fmt.Sprintf("host key verification failed for %s: the host is not in known_hosts (%s); it offered %s: check that fingerprint with the server's operator, then add the host with: %s",
		e.Host, files, e.Offered, e.AddCommand)
}

func (e *HostKeyError) Unwrap() error { return e.underlyingE }

// hostKeys checks server keys against known_hosts files.
type hostKeys struct {
	db    *knownhosts.HostKeyDB
	files []string
}

// newHostKeys reads the known_hosts files (missing ones are an error: a
// connector's known_hosts that does not exist is a mistake to report).
func newHostKeys(files ...string) (*hostKeys, error) {
	db, err := knownhosts.NewDB(files...)
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts: %w", err)
	}
	return &hostKeys{db: db, files: files}, nil
}

// callback returns the ssh.HostKeyCallback that turns knownhosts' errors
// into HostKeyErrors.
func (h *hostKeys) callback() ssh.HostKeyCallback {
	check := h.db.HostKeyCallback()
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		if err == nil {
			return nil
		}
		he := &HostKeyError{
			Host:        hostname,
			Offered:     key.Type() + " " + ssh.FingerprintSHA256(key),
			Files:       h.files,
			underlyingE: err,
		}
		switch {
		case knownhosts.IsHostKeyChanged(err):
			he.Changed = true
		case knownhosts.IsHostUnknown(err):
			host, port, serr := net.SplitHostPort(hostname)
			if serr != nil {
				host, port = hostname, "22"
			}
			cmd := "ssh-keyscan "
			if port != "22" {
				cmd += "-p " + port + " "
			}
			he.AddCommand = cmd + host + " >> " + h.files[0]
		default:
			return fmt.Errorf("host key verification failed for %s: %w", hostname, err)
		}
		return he
	}
}

// algorithms returns the host key algorithms known_hosts has for host:port,
// so that the server is asked for a key type that can be checked (nil: no
// entry, any type; the check then fails with "not in known_hosts").
func (h *hostKeys) algorithms(host string, port int) []string {
	if port == 0 {
		port = 22
	}
	return h.db.HostKeyAlgorithms(net.JoinHostPort(host, strconv.Itoa(port)))
}
