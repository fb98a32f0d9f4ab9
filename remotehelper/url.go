package remotehelper

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// DefaultServer is the server of a relay::<relay>/<folder> URL when neither
// `git config relay.url` nor RELAY_GIT_URL names one.
const DefaultServer = "http://127.0.0.1:8000"

// Environment variables the helper reads.
const (
	EnvServerURL = "RELAY_GIT_URL"   // server of relay::<relay>/<folder> URLs
	EnvToken     = "RELAY_GIT_TOKEN" // read API token when no credential helper has one
)

// Target is what a relay:: URL names: one shared folder, read either from
// the read API of a running `relay-git-sync serve` (Server) or straight from
// a data directory that no server holds (DataDir).
type Target struct {
	Folder  store.FolderID
	Server  string // base URL of the server, no trailing slash ("" for a data dir)
	DataDir string // absolute path of the data dir ("" for a server)

	relative bool // DataDir was given relative to the working directory
}

// String returns the target in a canonical form: the server's URL or the
// data dir's file:// URL, then /<relay>/<folder>.
func (t Target) String() string {
	if t.DataDir != "" {
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(t.DataDir)}).String() + "/" + t.Folder.String()
	}
	return t.Server + "/" + t.Folder.String()
}

// key is a short name for the target, safe in ref names and paths: the
// helper's private ref is refs/relay/<key>/heads/main.
func (t Target) key() string {
	sum := sha256.Sum256([]byte(t.String()))
	return hex.EncodeToString(sum[:8])
}

const urlForms = `use one of
  relay::<relay-id>/<folder-id>                  (server from git config relay.url, $RELAY_GIT_URL or ` + DefaultServer + `)
  relay::https://host[:port][/prefix]/<relay-id>/<folder-id>
  relay::/path/to/data-dir/<relay-id>/<folder-id>  (or file:///path/…, a data dir no server holds)`

// ParseURL reads the URL git hands the helper (with or without its
// "relay::" prefix). defaultServer is asked for the server of the short
// form; a relative data dir path is made absolute against cwd.
func ParseURL(raw string, defaultServer func() string, cwd string) (Target, error) {
	s := strings.TrimPrefix(strings.TrimSpace(raw), "relay::")
	bad := func(why string) (Target, error) {
		return Target{}, fmt.Errorf("malformed relay:: URL %q: %s; %s", readapi.RedactURL(raw), why, urlForms)
	}
	if s == "" {
		return bad("empty")
	}
	// The two ids are always the last two path segments.
	split := func(p string) (prefix string, f store.FolderID, err error) {
		p = strings.TrimSuffix(p, "/")
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return "", f, errors.New("want <relay-id>/<folder-id> at the end")
		}
		j := strings.LastIndexByte(p[:i], '/')
		f, err = store.ParseFolderID(p[j+1:])
		if err != nil {
			return "", f, err
		}
		return p[:max(j, 0)], f, nil
	}

	switch {
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"):
		u, err := url.Parse(s)
		if err != nil {
			return bad(err.Error())
		}
		if u.Host == "" {
			return bad("no host")
		}
		if u.User != nil {
			return bad("do not put credentials in the URL; use a git credential helper or " + EnvToken)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return bad("no query or fragment allowed")
		}
		prefix, f, err := split(u.Path)
		if err != nil {
			return bad(err.Error())
		}
		return Target{Folder: f, Server: u.Scheme + "://" + u.Host + prefix}, nil

	case strings.HasPrefix(s, "file://"):
		u, err := url.Parse(s)
		if err != nil {
			return bad(err.Error())
		}
		if u.Host != "" && u.Host != "localhost" {
			return bad("a file:// URL names a local path (file:///path/…)")
		}
		dir, f, err := split(u.Path)
		if err != nil {
			return bad(err.Error())
		}
		if dir == "" {
			return bad("no data dir before <relay-id>/<folder-id>")
		}
		return Target{Folder: f, DataDir: filepath.Clean(filepath.FromSlash(dir))}, nil

	case strings.Contains(s, "://"):
		return bad("unknown scheme")
	}

	// <relay>/<folder> alone: through the default server.
	if f, err := store.ParseFolderID(strings.TrimSuffix(s, "/")); err == nil {
		server := DefaultServer
		if defaultServer != nil {
			server = defaultServer()
		}
		u, err := url.Parse(server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			return Target{}, fmt.Errorf("server URL %q (from git config relay.url or %s) is not http(s)://host[:port][/prefix]", readapi.RedactURL(server), EnvServerURL)
		}
		return Target{Folder: f, Server: u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/")}, nil
	}

	// Anything else is a path to a data dir.
	dir, f, err := split(filepath.ToSlash(s))
	if err != nil {
		return bad(err.Error())
	}
	if dir == "" {
		if !strings.HasPrefix(s, "/") {
			return bad("want <relay-id>/<folder-id>, or a data dir path before them")
		}
		dir = "/"
	}
	dir = filepath.FromSlash(dir)
	rel := !filepath.IsAbs(dir)
	if rel {
		dir = filepath.Join(cwd, dir)
	}
	return Target{Folder: f, DataDir: filepath.Clean(dir), relative: rel}, nil
}
