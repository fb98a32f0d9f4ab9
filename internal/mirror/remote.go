package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/file"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage"
	"golang.org/x/crypto/ssh"

	"github.com/relay-git-sync/relay-git-sync/internal/connectors"
	"github.com/relay-git-sync/relay-git-sync/internal/sshkey"
)

// Credentials for HTTPS remotes come from the environment, never from the
// connectors file (which would then hold a secret) and never into a log.
const (
	// EnvHTTPSToken is the token (GitHub/GitLab personal or project access
	// token, Bitbucket app password, …) sent as the HTTP basic-auth password.
	EnvHTTPSToken = "RELAY_GIT_HTTPS_TOKEN"
	// EnvHTTPSUsername is the basic-auth user name sent with the token;
	// default DefaultHTTPSUsername (GitHub and GitLab accept any non-empty
	// name with a token; Bitbucket wants "x-token-auth" for access tokens,
	// or the account name for app passwords).
	EnvHTTPSUsername = "RELAY_GIT_HTTPS_USERNAME"
	// DefaultHTTPSUsername is the user name sent when none is configured.
	DefaultHTTPSUsername = "x-access-token"
)

// sshTimeout bounds establishing the TCP connection to an SSH remote.
const sshTimeout = 20 * time.Second

// remote is one connector's git remote: its endpoint, credentials and
// transport.
type remote struct {
	url      string // as configured (may hold credentials: never log it)
	display  string // url without credentials
	fetchURL string // url for go-git's fetch: the endpoint without credentials
	kind     connectors.URLKind
	ep       *transport.Endpoint // without credentials
	auth     transport.AuthMethod
	client   transport.Transport
}

// remoteDeps is what building a remote needs from the Manager.
type remoteDeps struct {
	key        *sshkey.Key
	keyErr     error
	knownHosts []string // the data dir's file first
	getenv     func(string) string
	httpClient *http.Client
}

func newRemote(c connectors.Connector, d remoteDeps) (*remote, error) {
	kind, err := connectors.ClassifyURL(c.URL)
	display := connectors.Redact(c.URL)
	if err != nil {
		return nil, fmt.Errorf("url %s: %v", display, err)
	}
	u := c.URL
	if kind == connectors.URLFile && !strings.HasPrefix(u, "file://") {
		u = "file://" + u
	}
	ep, err := transport.NewEndpoint(u)
	if err != nil {
		return nil, fmt.Errorf("url %s: %v", display, err)
	}
	r := &remote{url: c.URL, display: display, kind: kind, ep: ep}
	defer func() {
		// An scp-like path is relative to the home directory, which the
		// endpoint's ssh:// form would make absolute: keep the original.
		r.fetchURL = r.ep.String()
		if kind == connectors.URLSSH {
			r.fetchURL = c.URL
		}
	}()
	switch kind {
	case connectors.URLSSH:
		if d.key == nil {
			err := d.keyErr
			if err == nil {
				err = sshkey.ErrNotConfigured
			}
			return nil, fmt.Errorf("%s needs an SSH key: %w", display, err)
		}
		files := append([]string(nil), d.knownHosts...)
		if c.KnownHosts != "" {
			files = append(files, c.KnownHosts)
		}
		hk, err := newHostKeys(files...)
		if err != nil {
			return nil, err
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		r.auth = &sshAuth{user: user, signer: d.key.Signer, callback: hk.callback(), algorithms: hk.algorithms(ep.Host, ep.Port)}
		r.client = gitssh.DefaultClient
	case connectors.URLHTTPS, connectors.URLHTTP:
		user, pass := ep.User, ep.Password
		ep.User, ep.Password = "", ""
		if pass == "" {
			if tok := d.getenv(EnvHTTPSToken); tok != "" {
				pass = tok
				if user == "" {
					user = d.getenv(EnvHTTPSUsername)
				}
				if user == "" {
					user = DefaultHTTPSUsername
				}
			}
		}
		if pass != "" {
			if kind == connectors.URLHTTP && !isLoopback(ep.Host) {
				return nil, fmt.Errorf("%s: refusing to send credentials over plain http to %s; use https", display, ep.Host)
			}
			r.auth = &githttp.BasicAuth{Username: user, Password: pass}
		}
		r.client = githttp.NewClient(d.httpClient)
	case connectors.URLFile:
		// git's own receive-pack and upload-pack binaries, run locally.
		r.client = file.DefaultClient
	}
	return r, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// sshAuth is go-git's SSH AuthMethod with the whole client config under our
// control: the in-memory key, host keys checked against known_hosts (asking
// for the key types known_hosts has), and a connection timeout. (go-git's
// own PublicKeys cannot carry a timeout, and its NewClient override copies
// every field, zero ones included.)
type sshAuth struct {
	user       string
	signer     ssh.Signer
	callback   ssh.HostKeyCallback
	algorithms []string
}

func (a *sshAuth) Name() string   { return "ssh-public-keys" }
func (a *sshAuth) String() string { return "user: " + a.user + ", name: ssh-public-keys" }

func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	return &ssh.ClientConfig{
		User:              a.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(a.signer)},
		HostKeyCallback:   a.callback,
		HostKeyAlgorithms: a.algorithms,
		Timeout:           sshTimeout,
	}, nil
}

// receivePack opens a receive-pack session and returns it with the
// remote's references.
func (r *remote) receivePack(ctx context.Context) (transport.ReceivePackSession, *packp.AdvRefs, error) {
	sess, err := r.client.NewReceivePackSession(r.ep, r.auth)
	if err != nil {
		return nil, nil, r.wrap("connecting", err)
	}
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		sess.Close()
		return nil, nil, r.wrap("listing references", err)
	}
	return sess, ar, nil
}

// fetch brings the remote branch into st under ref dst.
func (r *remote) fetch(ctx context.Context, st storage.Storer, branch string, dst plumbing.ReferenceName) error {
	rem := git.NewRemote(st, &config.RemoteConfig{Name: "relay", URLs: []string{r.fetchURL}})
	err := rem.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "relay",
		RefSpecs:   []config.RefSpec{config.RefSpec("+" + string(plumbing.NewBranchReferenceName(branch)) + ":" + string(dst))},
		Auth:       r.auth,
		Tags:       git.NoTags,
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	if err != nil {
		return r.wrap("fetching "+branch, err)
	}
	return nil
}

// pushResult is what the remote said about an update.
type pushResult struct {
	rejected bool // the remote refused the update (not a transport failure)
}

// send updates ref from old to new, with the pack written by pack.
func (r *remote) send(ctx context.Context, sess transport.ReceivePackSession, ar *packp.AdvRefs, ref plumbing.ReferenceName,
	old, new plumbing.Hash, pack func(w io.Writer) error) (pushResult, error) {
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	req.Commands = []*packp.Command{{Name: ref, Old: old, New: new}}
	// The remote's messages (its fsck's findings, a hook's output) come on
	// the side band: kept, so that a refusal can name its cause.
	msgs := &remoteMessages{}
	if ar.Capabilities.Supports(capability.Sideband64k) {
		req.Capabilities.Set(capability.Sideband64k)
		req.Progress = msgs
	}
	pr, pw := io.Pipe()
	req.Packfile = pr
	done := make(chan error, 1)
	go func() {
		err := pack(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	rs, err := sess.ReceivePack(ctx, req)
	pr.Close()
	packErr := <-done
	if rs != nil {
		if rs.UnpackStatus != "ok" {
			return pushResult{}, fmt.Errorf("push to %s failed: the remote could not unpack: %s%s", r.display, rs.UnpackStatus, msgs.cause())
		}
		for _, cs := range rs.CommandStatuses {
			if cs.Status != "ok" {
				return pushResult{rejected: true}, fmt.Errorf("push to %s rejected: %s: %s%s", r.display, cs.ReferenceName, cs.Status, msgs.cause())
			}
		}
	}
	if err != nil {
		if packErr != nil && !errors.Is(packErr, io.ErrClosedPipe) {
			return pushResult{}, fmt.Errorf("writing the pack for %s: %w", r.display, packErr)
		}
		return pushResult{}, r.wrap("pushing", err)
	}
	if packErr != nil {
		return pushResult{}, fmt.Errorf("writing the pack for %s: %w", r.display, packErr)
	}
	return pushResult{}, nil
}

// maxRemoteMessages bounds what is kept of the remote's side-band messages.
const maxRemoteMessages = 64 << 10

// remoteMessages keeps the start of what the remote says during a push.
type remoteMessages struct{ b []byte }

func (m *remoteMessages) Write(p []byte) (int, error) {
	if room := maxRemoteMessages - len(m.b); room > 0 {
		m.b = append(m.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

// cause returns the remote's error lines ("error: object …: gitmodulesUrl:
// disallowed submodule url", "fatal: fsck error in packed object"), joined
// on one line after ": remote says: ", or "" when it said none.
func (m *remoteMessages) cause() string {
	var lines []string
	for l := range strings.FieldsFuncSeq(string(m.b), func(r rune) bool { return r == '\n' || r == '\r' }) {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "error:") || strings.HasPrefix(l, "fatal:") || strings.HasPrefix(l, "remote: error:") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return " (remote says: " + strings.Join(lines, "; ") + ")"
}

// supportsOFSDelta reports whether packs may use offset deltas.
func supportsOFSDelta(ar *packp.AdvRefs) bool {
	return ar.Capabilities.Supports(capability.OFSDelta)
}

// wrap names the remote (without credentials) in a transport error and
// explains the common ones.
func (r *remote) wrap(what string, err error) error {
	var hk *HostKeyError
	switch {
	case errors.As(err, &hk):
		return fmt.Errorf("%s %s: %w", what, r.display, hk)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		hint := ""
		if r.kind == connectors.URLHTTPS || r.kind == connectors.URLHTTP {
			hint = " (set " + EnvHTTPSToken + " to a token with write access)"
		}
		return fmt.Errorf("%s %s: %w%s", what, r.display, err, hint)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%s %s: %w (create it first; for a local backup: git init --bare)", what, r.display, err)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("%s %s: %w (is the public key of SSH_PRIVATE_KEY, shown by `relay-git-sync ssh show-pubkey`, a deploy key with write access?)", what, r.display, err)
	}
	return fmt.Errorf("%s %s: %w", what, r.display, err)
}
