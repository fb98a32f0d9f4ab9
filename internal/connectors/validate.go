package connectors

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// URLKind is how a connector's url reaches its repository.
type URLKind int

// The kinds of url a connector may have.
const (
	URLInvalid URLKind = iota
	URLSSH             // ssh://[user@]host[:port]/path or scp-like [user@]host:path
	URLHTTPS           // https://host/path
	URLHTTP            // http://host/path (no credentials are ever sent over it)
	URLFile            // an absolute local path or file:///path (local backups)
)

func (k URLKind) String() string {
	switch k {
	case URLSSH:
		return "ssh"
	case URLHTTPS:
		return "https"
	case URLHTTP:
		return "http"
	case URLFile:
		return "file"
	}
	return "invalid"
}

// scpRE is git's scp-like syntax: [user@]host:path, where host has no
// slash (else git reads the string as a local path).
var scpRE = regexp.MustCompile(`^(?:[^@/\s]+@)?(\[[^\]]+\]|[^@/:\s]+):(.*)$`)

// ClassifyURL says what kind of remote u names, or why it cannot be used.
// Accepted: ssh://, scp-like [user@]host:path, https://, http://, file://
// with an absolute path, and an absolute local path.
func ClassifyURL(u string) (URLKind, error) {
	if strings.TrimSpace(u) != u || u == "" {
		return URLInvalid, errors.New("must not be empty or have leading or trailing spaces")
	}
	if strings.ContainsAny(u, "\x00\n\r\t") {
		return URLInvalid, errors.New("contains control characters")
	}
	if i := strings.Index(u, "://"); i > 0 {
		pu, err := url.Parse(u)
		if err != nil {
			return URLInvalid, fmt.Errorf("not a valid URL: %v", err)
		}
		switch strings.ToLower(pu.Scheme) {
		case "ssh", "git+ssh", "ssh+git":
			if pu.Hostname() == "" {
				return URLInvalid, errors.New("ssh URL without a host")
			}
			if _, hasPass := pu.User.Password(); hasPass {
				return URLInvalid, errors.New("ssh URL with a password: SSH uses the key in SSH_PRIVATE_KEY")
			}
			return URLSSH, nil
		case "https":
			if pu.Hostname() == "" {
				return URLInvalid, errors.New("https URL without a host")
			}
			return URLHTTPS, nil
		case "http":
			if pu.Hostname() == "" {
				return URLInvalid, errors.New("http URL without a host")
			}
			return URLHTTP, nil
		case "file":
			if pu.Host != "" && pu.Host != "localhost" {
				return URLInvalid, fmt.Errorf("file URL with a host (%s): use file:///absolute/path", pu.Host)
			}
			if !strings.HasPrefix(pu.Path, "/") {
				return URLInvalid, errors.New("file URL without an absolute path: use file:///absolute/path")
			}
			return URLFile, nil
		case "git":
			return URLInvalid, errors.New("git:// is read-only; use ssh or https to push")
		default:
			return URLInvalid, fmt.Errorf("unsupported scheme %q (use ssh://, git@host:path, https://, file:// or an absolute path)", pu.Scheme)
		}
	}
	if strings.HasPrefix(u, "/") {
		return URLFile, nil
	}
	if scpRE.MatchString(u) {
		m := scpRE.FindStringSubmatch(u)
		if m[2] == "" {
			return URLInvalid, errors.New("scp-like URL without a path (host:path)")
		}
		return URLSSH, nil
	}
	return URLInvalid, errors.New("neither a URL (ssh://, https://, file://), nor git@host:path, nor an absolute path (relative paths are ambiguous: use file:///absolute/path)")
}

// CheckBranch reports why name cannot be a branch name, following
// git-check-ref-format for refs/heads/<name>.
func CheckBranch(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if strings.HasPrefix(name, "-") {
		return errors.New("starts with '-'")
	}
	if strings.HasPrefix(name, "refs/") {
		return errors.New("give the branch name without refs/heads/")
	}
	if name == "@" {
		return errors.New(`"@" is not a branch name`)
	}
	for _, bad := range []string{"..", "@{", "//"} {
		if strings.Contains(name, bad) {
			return fmt.Errorf("contains %q", bad)
		}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return fmt.Errorf("contains %q", r)
		}
	}
	if strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") {
		return errors.New("starts or ends with '/' or ends with '.'")
	}
	for _, c := range strings.Split(name, "/") {
		if strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
			return fmt.Errorf("component %q starts with '.' or ends with .lock", c)
		}
	}
	return nil
}

// Validate checks connectors further, as `relay-git-sync connectors
// validate` (the original's `git validate`) does: every problem, with the
// line of the key concerned. Give it ParseAll's entries to check the
// entries that failed Parse's checks too (Invalid ones get no duplicate or
// overlap checks). Beyond the original's checks (duplicates, url
// scheme, branch, remote_name) it checks that:
//   - url is ssh, https, http, file:// or an absolute path, without a
//     password in it (use RELAY_GIT_HTTPS_TOKEN);
//   - branch is a valid branch name;
//   - known_hosts, when set, is a readable known_hosts file, and the url
//     uses SSH;
//   - no two connectors write the same paths of one remote branch (same
//     url and branch, prefixes equal or one inside the other);
//   - no key is unknown (a typo such as "perfix" would silently be
//     ignored).
//
// Several connectors of one folder are allowed (a remote and a local
// backup, say), unlike in the original, where only the first counted.
func Validate(name string, cs []Connector) []Problem {
	var out []Problem
	add := func(c Connector, i int, key, format string, args ...any) {
		out = append(out, Problem{File: name, Line: c.KeyLine(key), Msg: fmt.Sprintf("connector %d: ", i+1) + fmt.Sprintf(format, args...)})
	}
	dup := make([]bool, len(cs))
	for j, c := range cs {
		i := j
		if c.keyLines != nil || c.Line > 0 {
			i = c.index // number entries as in the file, as Parse does
		}
		for _, k := range c.Unknown {
			add(c, i, k, "unknown key %q (ignored; known keys: shared_folder_id, relay_id, url, branch, remote_name, prefix, known_hosts)", k)
		}
		kind, err := ClassifyURL(c.URL)
		if err != nil && c.URL != "" { // an empty url was reported by Parse
			add(c, i, "url", "url %q: %v", Redact(c.URL), err)
		}
		if kind == URLHTTPS || kind == URLHTTP {
			if pu, err := url.Parse(c.URL); err == nil {
				if _, ok := pu.User.Password(); ok {
					add(c, i, "url", "url %q holds a password or token: put it in RELAY_GIT_HTTPS_TOKEN instead", Redact(c.URL))
				}
			}
		}
		if err := CheckBranch(c.Branch); err != nil && c.Branch != "" {
			add(c, i, "branch", "branch %q is not a valid branch name: %v", c.Branch, err)
		}
		if c.RemoteName != "" && (strings.ContainsAny(c.RemoteName, " \t") || CheckBranch(c.RemoteName) != nil) {
			add(c, i, "remote_name", "remote_name %q must be a name without spaces", c.RemoteName)
		}
		if c.KnownHosts != "" {
			if kind != URLSSH && kind != URLInvalid {
				add(c, i, "known_hosts", "known_hosts is only used for SSH urls (this url is %s)", kind)
			}
			if err := checkKnownHostsFile(c.KnownHosts); err != nil {
				add(c, i, "known_hosts", "known_hosts %q: %v", c.KnownHosts, err)
			}
		}
		if c.Invalid {
			continue // its ids or prefix are unusable: no cross checks
		}
		for k := range j {
			o := cs[k]
			if dup[k] || o.Invalid {
				continue
			}
			oi := k
			if o.keyLines != nil || o.Line > 0 {
				oi = o.index
			}
			if o.RelayID == c.RelayID && o.SharedFolderID == c.SharedFolderID && sameRemote(o.URL, c.URL) && o.Branch == c.Branch && o.Prefix == c.Prefix {
				add(c, i, "url", "duplicate of connector %d (line %d): same folder, url, branch and prefix", oi+1, o.Line)
				dup[j] = true
				break
			}
			if sameRemote(o.URL, c.URL) && o.Branch == c.Branch && prefixesOverlap(o.Prefix, c.Prefix) {
				add(c, i, "prefix", "writes the same paths as connector %d (line %d): same url and branch, prefixes %s and %s overlap; give each folder its own prefix",
					oi+1, o.Line, showPrefix(o.Prefix), showPrefix(c.Prefix))
			}
		}
	}
	return out
}

// Placeholders of Example, which `connectors init` writes: left as they
// are, the file validates, but follows a folder that is not the user's and
// pushes to a repository that is not theirs.
var (
	exampleIDs  = []string{"6ba7b810-9dad-11d1-80b4-00c04fd430c8", "f47ac10b-58cc-4372-a567-0e02b2c3d479"}
	exampleURLs = []string{"git@github.com:example/notes.git", "https://gitlab.com/example/notes-backup.git",
		"/srv/backups/notes.git", "ssh://git@git.example.com:2222/team/wiki.git"}
)

// Warnings reports what is valid but almost certainly a mistake: the
// placeholder ids and urls of Example, and urls on the domains reserved
// for examples (example.com, .org, .net, .example, .invalid: RFC 2606).
// Entries are numbered as Validate numbers them.
func Warnings(name string, cs []Connector) []Problem {
	var out []Problem
	for j, c := range cs {
		i := j
		if c.keyLines != nil || c.Line > 0 {
			i = c.index
		}
		warn := func(key, format string, args ...any) {
			out = append(out, Problem{File: name, Line: c.KeyLine(key), Warning: true,
				Msg: fmt.Sprintf("connector %d: ", i+1) + fmt.Sprintf(format, args...)})
		}
		for _, k := range []struct{ key, id, what string }{
			{"relay_id", c.RelayID, "your relay's id"},
			{"shared_folder_id", c.SharedFolderID, "the id of your shared folder"},
		} {
			if slices.Contains(exampleIDs, strings.ToLower(k.id)) {
				warn(k.key, "%s %q is the example from `connectors init`: put %s here", k.key, k.id, k.what)
			}
		}
		switch {
		case slices.Contains(exampleURLs, c.URL):
			warn("url", "url %q is the example from `connectors init`: put your repository's url here", c.URL)
		case exampleHost(c.URL):
			warn("url", "url %q is on a domain reserved for examples: nothing can be pushed there", Redact(c.URL))
		}
	}
	return out
}

// exampleHost reports whether url u names a host on a domain reserved for
// examples (RFC 2606).
func exampleHost(u string) bool {
	var host string
	if kind, err := ClassifyURL(u); err != nil || kind == URLFile {
		return false
	}
	if pu, err := url.Parse(u); err == nil && pu.Host != "" {
		host = pu.Hostname()
	} else if m := scpRE.FindStringSubmatch(u); m != nil {
		host = strings.Trim(m[1], "[]")
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, d := range []string{"example.com", "example.org", "example.net", "example", "invalid"} {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

func showPrefix(p string) string {
	if p == "" {
		return "(root)"
	}
	return fmt.Sprintf("%q", p)
}

// sameRemote compares urls loosely (a trailing slash or ".git" aside).
func sameRemote(a, b string) bool {
	norm := func(s string) string {
		s = strings.TrimSuffix(strings.TrimRight(s, "/"), ".git")
		return strings.ToLower(s)
	}
	return norm(a) == norm(b)
}

// prefixesOverlap reports whether two validated prefixes share paths: equal,
// one inside the other, or either is the root.
func prefixesOverlap(a, b string) bool {
	if a == "" || b == "" || a == b {
		return true
	}
	return strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// checkKnownHostsFile reads a known_hosts file and checks every line.
func checkKnownHostsFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n, keys := 0, 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if _, _, _, _, _, err := ssh.ParseKnownHosts(line); err != nil {
			return fmt.Errorf("line %d: %v", n, err)
		}
		keys++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if keys == 0 {
		return errors.New("holds no host keys")
	}
	return nil
}

// Redact returns u with any password or token in it replaced by "***",
// for logs and messages.
func Redact(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return u
	}
	rest := u[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return u
	}
	userinfo := rest[:at]
	if c := strings.Index(userinfo, ":"); c >= 0 {
		userinfo = userinfo[:c] + ":***"
	}
	return u[:i+3] + userinfo + rest[at:]
}
