package remotehelper

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/relay-git-sync/relay-git-sync/internal/gitcred"
	"github.com/relay-git-sync/relay-git-sync/internal/gitpath"
	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
	"github.com/relay-git-sync/relay-git-sync/internal/writeguard"
)

// Pushing: git sends `list for-push` (answered by list, which leaves the
// source open and records the snapshot the remote's head stands for), then
// a batch of `push [+]<src>:<dst>` lines. A push of refs/heads/main that
// fast-forwards the remote's head is written into Relay: the difference
// between the head's tree and the pushed commit's tree (git diff-tree -M,
// so renames keep their documents), each path as writeback writes it.
// Everything Relay cannot hold refuses the whole push before anything is
// written.

// Environment variables of the push.
const (
	// EnvRelayServerURL and EnvRelayServerAPIKey say where a push into a
	// data dir target writes (the Relay Server itself).
	EnvRelayServerURL    = "RELAY_SERVER_URL"
	EnvRelayServerAPIKey = "RELAY_SERVER_API_KEY"
)

// Git tree modes a push can meet.
const (
	modeSymlink   = "120000"
	modeSubmodule = "160000"
)

// errPushRefused is a push refused before anything was written; its text
// is the reason git shows.
type errPushRefused struct{ why string }

func (e *errPushRefused) Error() string { return e.why }

func refuse(format string, a ...any) error { return &errPushRefused{why: fmt.Sprintf(format, a...)} }

// push answers one batch of push commands, then the blank line.
func (h *helper) push(ctx context.Context, cmds []string) error {
	if h.repo == nil {
		return errors.New("git asked to push without a repository (GIT_DIR is not set)")
	}
	for _, c := range cmds {
		spec, ok := strings.CutPrefix(c, "push ")
		if !ok {
			return fmt.Errorf("malformed push command %q", c)
		}
		force := strings.HasPrefix(spec, "+")
		src, dst, ok := strings.Cut(strings.TrimPrefix(spec, "+"), ":")
		if !ok {
			return fmt.Errorf("malformed push command %q", c)
		}
		if why := h.pushRef(ctx, src, dst, force); why != "" {
			h.printf("error %s %s\n", dst, why)
		} else {
			h.printf("ok %s\n", dst)
		}
	}
	h.printf("\n")
	return nil
}

// pushRef pushes src to dst and returns "" or the one-line reason it was
// refused (git's own "fetch first" and "non-fast-forward" where they fit).
func (h *helper) pushRef(ctx context.Context, src, dst string, force bool) string {
	switch {
	case dst != Branch:
		return fmt.Sprintf("a relay:: remote has one branch, %s: push to it (git push <remote> HEAD:main)", Branch)
	case src == "":
		return "the branch of a relay:: remote cannot be deleted: it is the folder's history"
	case !h.listed:
		return "git pushed without listing the remote first"
	}
	out, err := h.git.output(ctx, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", src+"^{commit}")
	if err != nil {
		return fmt.Sprintf("%s is not a commit", src)
	}
	id, err := parseHash(strings.TrimSpace(string(out)))
	if err != nil {
		return err.Error()
	}
	if id == h.tip {
		return ""
	}
	if !h.tip.IsZero() {
		has, err := h.repo.hasObject(ctx, h.tip)
		if err != nil {
			return "reading the local repository: " + oneLine(err)
		}
		if !has {
			h.note("the remote has snapshots this repository lacks (%s): git fetch, then push again", h.tip)
			return "fetch first"
		}
		c := h.git.cmd(ctx, "merge-base", "--is-ancestor", h.tip.String(), id.String())
		err = c.Run()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit) && exit.ExitCode() == 1:
			if force {
				h.note("a relay:: remote takes no forced push: every push must build on its head (%s)", h.tip)
			}
			return "non-fast-forward"
		case err != nil:
			return "git merge-base: " + oneLine(err)
		}
	}
	changes, err := h.pushChanges(ctx, h.tip, id)
	if err != nil {
		var r *errPushRefused
		if errors.As(err, &r) {
			h.note("push refused, nothing written: %s", r.why)
			return oneLine(r)
		}
		return oneLine(err)
	}
	commit, err := h.pushCommit(ctx, h.tip, id)
	if err != nil {
		return oneLine(err)
	}
	res, err := h.writeChanges(ctx, readapi.ChangesRequest{Changes: changes, ExpectSeq: h.tipSeq, DryRun: h.dryRun, Commit: commit})
	if res != nil && h.verbosity > 0 {
		for _, a := range res.Actions {
			fmt.Fprintf(h.cfg.Stderr, "relay: %s\n", a)
		}
	}
	switch {
	case errors.Is(err, readapi.ErrStale):
		h.note("%v", err)
		return "fetch first"
	case err != nil:
		msg := err.Error()
		if res != nil && len(res.Written) > 0 && !strings.Contains(msg, "written before the failure") {
			msg += "; written before the failure: " + strings.Join(res.Written, ", ") + " (pushing again writes only what is missing)"
		}
		h.note("push failed: %s", msg)
		return oneLine(errors.New(msg))
	}
	switch {
	case h.dryRun:
		h.note("dry run: %d changes would be written into Relay", len(res.Actions))
	case h.verbosity > 0:
		fmt.Fprintf(h.cfg.Stderr, "relay: wrote %d paths into Relay; the folder's next snapshot is commit %s itself\n", len(res.Written), id)
	}
	return ""
}

// note writes a message for the user on stderr.
func (h *helper) note(format string, a ...any) {
	fmt.Fprintf(h.cfg.Stderr, "relay: "+format+"\n", a...)
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// pushChanges returns the changes that turn the tree of commit old (the
// remote's head; zero: an empty folder) into the tree of commit new, with
// paths as the folder has them (see gitpath), and their contents.
func (h *helper) pushChanges(ctx context.Context, old, new plumbing.Hash) ([]readapi.WriteChange, error) {
	base := history.EmptyTree.String()
	toStore := func(p string) string { return p }
	kinds := map[string]string{}
	if !old.IsZero() {
		base = old.String()
		snap, err := h.src.Snapshot(ctx, h.target.Folder, h.tipSeq)
		if err != nil {
			return nil, fmt.Errorf("reading snapshot %d of %s: %w", h.tipSeq, h.target.Folder, err)
		}
		for _, f := range snap.Files {
			kinds[f.Path] = f.Kind
		}
		toStore = storePaths(snap.Files)
	}
	out, err := h.git.output(ctx, nil, "diff-tree", "-r", "-z", "-M", "--no-commit-id", base, new.String())
	if err != nil {
		return nil, err
	}
	kindOf := func(p string) string {
		if k, ok := kinds[p]; ok {
			return k
		}
		return writeback.KindOf(p)
	}
	var changes []readapi.WriteChange
	var blobs []plumbing.Hash // the blob of each change with content, in order
	var idx []int             // its change
	add := func(c readapi.WriteChange, mode, sha, gitPath string) error {
		switch mode {
		case modeSymlink:
			return refuse("%s is a symbolic link, which Relay cannot hold: replace it with a file or remove it", gitPath)
		case modeSubmodule:
			return refuse("%s is a submodule, which Relay cannot hold: remove it", gitPath)
		case "100644", "100755":
		default:
			return refuse("%s has mode %s, which Relay cannot hold", gitPath, mode)
		}
		id, err := parseHash(sha)
		if err != nil {
			return err
		}
		idx = append(idx, len(changes))
		blobs = append(blobs, id)
		changes = append(changes, c)
		return nil
	}
	fields := bytes.Split(bytes.TrimSuffix(out, []byte{0}), []byte{0})
	for i := 0; i < len(fields); i++ {
		meta := string(fields[i])
		if meta == "" {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(meta, ":"))
		if !strings.HasPrefix(meta, ":") || len(f) != 5 || f[4] == "" {
			return nil, fmt.Errorf("git diff-tree: unexpected line %q", meta)
		}
		newMode, newSHA, status := f[1], f[3], f[4][0]
		paths := 1
		if status == 'R' || status == 'C' {
			paths = 2
		}
		if i+paths >= len(fields) {
			return nil, fmt.Errorf("git diff-tree: truncated output after %q", meta)
		}
		p := string(fields[i+1])
		i += paths
		switch status {
		case 'D':
			changes = append(changes, readapi.WriteChange{Path: toStore(p), Delete: true})
		case 'A', 'M', 'T':
			sp := toStore(p)
			if err := unsafeName(sp, p, kinds); err != nil {
				return nil, err
			}
			if err := add(readapi.WriteChange{Path: sp, Kind: kindOf(sp)}, newMode, newSHA, p); err != nil {
				return nil, err
			}
		case 'R':
			to := string(fields[i])
			from, sp := toStore(p), toStore(to)
			if err := unsafeName(sp, to, kinds); err != nil {
				return nil, err
			}
			c := readapi.WriteChange{Path: sp, From: from, Kind: kindOf(sp)}
			if kindOf(from) != c.Kind {
				// A note renamed to an attachment (or back) is another
				// kind of document: the old one goes, a new one comes.
				changes = append(changes, readapi.WriteChange{Path: from, Delete: true})
				c.From = ""
			}
			if err := add(c, newMode, newSHA, to); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("git diff-tree: unexpected status %q for %s", f[4], p)
		}
	}
	if err := h.readContents(ctx, changes, blobs, idx); err != nil {
		return nil, err
	}
	for _, c := range changes {
		if err := readapi.CheckChange(c); err != nil {
			return nil, refuse("%s", err)
		}
	}
	return changes, nil
}

// unsafeName refuses a new path (sp, git path gp) with a name git trees do
// not hold as is (".gitattributes", "aux.md", over 255 bytes: see
// gitpath): its snapshot would come back under a safe name, and the
// fetched tree would differ from the pushed one.
func unsafeName(sp, gp string, existing map[string]string) error {
	if _, ok := existing[sp]; ok || sp != gp || !gitpath.PathChecks(sp, gitpath.Tree) {
		return nil
	}
	return refuse("%s: a name git or a Windows checkout cannot hold as is, which the history would keep under another name: create it in Obsidian, or choose another name", gp)
}

// readContents fills the Data of changes[idx[i]] with blob blobs[i], after
// checking every size against the limits (so that nothing large is read
// for a push that is refused anyway).
func (h *helper) readContents(ctx context.Context, changes []readapi.WriteChange, blobs []plumbing.Hash, idx []int) error {
	if len(blobs) == 0 {
		return nil
	}
	var in bytes.Buffer
	for _, b := range blobs {
		fmt.Fprintf(&in, "%s\n", b)
	}
	out, err := h.git.output(ctx, in.Bytes(), "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)")
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(blobs) {
		return fmt.Errorf("git cat-file --batch-check: %d answers for %d objects", len(lines), len(blobs))
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 || f[1] != "blob" {
			return fmt.Errorf("git cat-file --batch-check: %q for %s", l, blobs[i])
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return fmt.Errorf("git cat-file --batch-check: %q", l)
		}
		c := changes[idx[i]]
		limit := int64(readapi.MaxAttachmentBytes)
		if c.Kind != "file" {
			limit = readapi.MaxDocumentBytes
		}
		if n > limit {
			// CheckChange words it, on a stand-in of the size.
			c.Data = make([]byte, n)
			return refuse("%s", readapi.CheckChange(c))
		}
	}

	cmd := h.git.cmd(ctx, "cat-file", "--batch")
	cmd.Stdin = bytes.NewReader(in.Bytes())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("git cat-file --batch: %w", err)
	}
	r := bufio.NewReader(stdout)
	readErr := func() error {
		for i := range blobs {
			header, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			f := strings.Fields(header)
			if len(f) != 3 || f[1] != "blob" {
				return fmt.Errorf("unexpected answer %q for %s", strings.TrimSpace(header), blobs[i])
			}
			n, err := strconv.Atoi(f[2])
			if err != nil {
				return fmt.Errorf("unexpected answer %q", strings.TrimSpace(header))
			}
			data := make([]byte, n+1) // the content and its newline
			if _, err := io.ReadFull(r, data); err != nil {
				return err
			}
			changes[idx[i]].Data = data[:n]
		}
		return nil
	}()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git cat-file --batch: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if readErr != nil {
		return fmt.Errorf("git cat-file --batch: %w", readErr)
	}
	return nil
}

// storePaths maps a path of the tree synthesized from files back to the
// folder's path: names git cannot take are written under gitpath's safe
// names (".gitmodules" → ".gitmodules~<hash>"), whole paths and directory
// prefixes alike. Other paths are the folder's own.
func storePaths(files []store.File) func(string) string {
	renamed := gitpath.Rename(files, func(f store.File) string { return f.Path }, gitpath.Tree)
	if len(renamed) == 0 {
		return func(p string) string { return p }
	}
	byGit := make(map[string]string, len(renamed))
	dirs := map[string]string{} // git directory → folder directory
	for sp, gp := range renamed {
		byGit[gp] = sp
		s, g := strings.Split(sp, "/"), strings.Split(gp, "/")
		for i := 1; i < len(g) && i < len(s); i++ {
			if gd, sd := strings.Join(g[:i], "/"), strings.Join(s[:i], "/"); gd != sd {
				dirs[gd] = sd
			}
		}
	}
	return func(p string) string {
		if sp, ok := byGit[p]; ok {
			return sp
		}
		// A new file in a directory that has a safe name.
		for i := strings.LastIndexByte(p, '/'); i > 0; i = strings.LastIndexByte(p[:i], '/') {
			if sd, ok := dirs[p[:i]]; ok {
				return sd + p[i:]
			}
		}
		return p
	}
}

// pushCommit is the pushed commit id with the pack of what it brings over
// base (the remote's head; zero: none), which the history takes as the
// snapshot its changes come back as.
func (h *helper) pushCommit(ctx context.Context, base, id plumbing.Hash) (*readapi.PushCommit, error) {
	revs := id.String() + "\n"
	c := &readapi.PushCommit{ID: id.String()}
	if !base.IsZero() {
		revs += "^" + base.String() + "\n"
		c.Parent = base.String()
	}
	pack, err := h.git.output(ctx, []byte(revs), "pack-objects", "--revs", "--stdout", "-q")
	if err != nil {
		return nil, fmt.Errorf("packing the pushed commits: %w", err)
	}
	if len(pack) > readapi.MaxChangesBody/2 {
		return nil, refuse("the pushed commits bring %d MiB of objects, more than the %d MiB a push may: push fewer or smaller files at a time", len(pack)>>20, readapi.MaxChangesBody>>21)
	}
	c.Pack = pack
	return c, nil
}

// writeChanges writes a push's changes into Relay: through the server's
// write route (with the write token), or, for a data dir, straight to the
// Relay Server named by RELAY_SERVER_URL. The result is nil when nothing
// was tried.
func (h *helper) writeChanges(ctx context.Context, req readapi.ChangesRequest) (*readapi.ChangesResult, error) {
	f := h.target.Folder
	if h.target.Server == "" {
		return h.writeToRelay(ctx, req)
	}
	token, cred := h.writeToken(ctx)
	c, err := readapi.New(h.target.Server, token, readapi.WithUserAgent("git-remote-relay"))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res, err := c.WriteChanges(ctx, f, req)
	switch {
	case errors.Is(err, readapi.ErrUnauthorized) && cred != nil:
		if rerr := cred.Reject(ctx, h.git.cred()); rerr != nil {
			h.log.Warn("git credential reject failed", "err", rerr)
		}
		return res, fmt.Errorf("%w (the write token from your credential helper, now removed with `git credential reject`)", err)
	case errors.Is(err, readapi.ErrUnauthorized):
		return res, fmt.Errorf("%w; or store it for git's credential helper under the user name %s", err, gitcred.WriteUser)
	case err == nil && cred != nil:
		if aerr := cred.Approve(ctx, h.git.cred()); aerr != nil {
			h.log.Warn("git credential approve failed", "err", aerr)
		}
	}
	return res, err
}

// writeToken finds the write token: $RELAY_GIT_WRITE_TOKEN, else git's
// credential helper (user name gitcred.WriteUser), else a prompt when git
// may prompt. cred is set when the token came from the credential helper.
func (h *helper) writeToken(ctx context.Context) (string, *gitcred.Credential) {
	if tok := h.cfg.Getenv(readapi.WriteTokenEnv); tok != "" {
		return tok, nil
	}
	server := h.target.Server
	if c, ok, err := gitcred.FillAs(ctx, h.git.cred(), server, gitcred.WriteUser, false); err == nil && ok {
		return c.Password, &c
	} else if err != nil {
		h.log.Warn("git credential fill failed", "err", err)
	}
	if h.cfg.Getenv("GIT_TERMINAL_PROMPT") != "0" {
		if c, ok, err := gitcred.FillAs(ctx, h.git.cred(), server, gitcred.WriteUser, true); err == nil && ok {
			return c.Password, &c
		}
	}
	return "", nil
}

// writeToRelay writes a push for a data dir target: the data dir (open
// since list, so no serve can be recording snapshots) must still have the
// snapshot the push builds on, and RELAY_SERVER_URL and
// RELAY_SERVER_API_KEY say where the Relay Server is. The push is recorded
// in the data dir as its next snapshot.
func (h *helper) writeToRelay(ctx context.Context, req readapi.ChangesRequest) (*readapi.ChangesResult, error) {
	f := h.target.Folder
	relayURL := h.cfg.Getenv(EnvRelayServerURL)
	if relayURL == "" {
		return nil, fmt.Errorf("pushing to a data dir writes to the Relay Server itself: set %s and %s, or push through a running serve (relay::http://host:port/%s)", EnvRelayServerURL, EnvRelayServerAPIKey, f)
	}
	rc, err := relay.NewClient(relay.ClientOptions{BaseURL: relayURL, APIKey: h.cfg.Getenv(EnvRelayServerAPIKey), Logger: h.log, UserAgent: "git-remote-relay",
		FileToken: relay.FileTokensFromEnv(h.cfg.Getenv)})
	if err != nil {
		return nil, err
	}
	return writeguard.WriteChanges(ctx, h.src, rc, writeguard.RecordInto(h.src, rc, h.log), f, req)
}
