package remotehelper

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/relay-git-sync/relay-git-sync/internal/gitcred"
	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// git runs git commands for the helper. Env is the environment git gave the
// helper (GIT_DIR and friends), with GIT_DIR made absolute.
type gitRunner struct {
	env []string
	dir string // working directory
}

func (g *gitRunner) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, "git", args...)
	c.Env = g.env
	c.Dir = g.dir
	return c
}

// cred is g for `git credential`.
func (g *gitRunner) cred() gitcred.Git { return gitcred.Git{Env: g.env, Dir: g.dir} }

// output runs git and returns its stdout; stderr goes into the error.
func (g *gitRunner) output(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	c := g.cmd(ctx, args...)
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return out, fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return out, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return out, nil
}

// localRepo is the repository git runs the helper for ($GIT_DIR).
type localRepo struct {
	git    *gitRunner
	gitDir string

	mu    sync.Mutex
	batch *exec.Cmd // git cat-file --batch-check, started on first use
	in    io.WriteCloser
	out   *bufio.Reader
}

// localTip is the commit the helper's private ref points at: the last
// snapshot fetched into this repository.
type localTip struct {
	commit  plumbing.Hash
	parents []plumbing.Hash
	seq     uint64
}

// maxPushedCommits bounds the walk from a pushed commit back to the
// snapshot commit it was pushed on.
const maxPushedCommits = 1000

// tipAt returns the local tip that commit id (with parents and message)
// stands for in folder f's history, or nil when it is not one. A commit
// of the history names its snapshot in its message. A pushed commit does
// not (it is the user's own): it stands for the snapshot after the one
// its first-parent chain was pushed on, which the synthesis checks.
func (r *localRepo) tipAt(ctx context.Context, f store.FolderID, id plumbing.Hash, parents []plumbing.Hash, msg string) (*localTip, error) {
	tip := &localTip{commit: id, parents: parents}
	for range maxPushedCommits {
		folder, seq, ok := history.SnapshotOf(msg)
		switch {
		case ok && (folder != f || seq == 0):
			return nil, nil
		case ok && id == tip.commit:
			tip.seq = seq
			return tip, nil
		case ok:
			tip.seq = seq + 1
			return tip, nil
		case len(parents) == 0:
			return nil, nil
		}
		var err error
		if id, parents, msg, err = r.commitAt(ctx, parents[0].String()); err != nil || id.IsZero() {
			return nil, err
		}
	}
	return nil, nil
}

// commitAt reads the commit ref points at: its id, parents and message,
// with one `git cat-file --batch` (zero id when the ref does not exist).
func (r *localRepo) commitAt(ctx context.Context, ref string) (id plumbing.Hash, parents []plumbing.Hash, message string, err error) {
	out, err := r.git.output(ctx, []byte(ref+"^{commit}\n"), "cat-file", "--batch")
	if err != nil {
		return id, nil, "", err
	}
	header, body, ok := bytes.Cut(out, []byte("\n"))
	f := strings.Fields(string(header))
	if !ok || len(f) != 3 || f[1] != "commit" {
		return id, nil, "", nil // "<ref> missing"
	}
	if id, err = parseHash(f[0]); err != nil {
		return id, nil, "", err
	}
	size, err := strconv.Atoi(f[2])
	if err != nil || size > len(body) {
		return plumbing.ZeroHash, nil, "", fmt.Errorf("git cat-file --batch: short answer for %s", ref)
	}
	head, msg, _ := bytes.Cut(body[:size], []byte("\n\n"))
	for _, line := range strings.Split(string(head), "\n") {
		if p, ok := strings.CutPrefix(line, "parent "); ok {
			h, err := parseHash(p)
			if err != nil {
				return plumbing.ZeroHash, nil, "", fmt.Errorf("commit %s: %w", id, err)
			}
			parents = append(parents, h)
		}
	}
	return id, parents, string(msg), nil
}

func parseHash(s string) (plumbing.Hash, error) {
	if _, err := store.ParseBlobID(s); err != nil { // 40 hex digits
		return plumbing.ZeroHash, fmt.Errorf("not an object id: %q", s)
	}
	return plumbing.NewHash(s), nil
}

// startBatch starts the `git cat-file --batch-check` hasObject uses, ahead
// of its first use.
func (r *localRepo) startBatch(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startLocked(ctx) // an error is hasObject's to report
}

func (r *localRepo) startLocked(ctx context.Context) error {
	if r.batch == nil {
		c := r.git.cmd(context.WithoutCancel(ctx), "cat-file", "--batch-check=%(objectname)")
		in, err := c.StdinPipe()
		if err != nil {
			return err
		}
		out, err := c.StdoutPipe()
		if err != nil {
			return err
		}
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			return fmt.Errorf("git cat-file: %w", err)
		}
		r.batch, r.in, r.out = c, in, bufio.NewReader(out)
	}
	return nil
}

// hasObject reports whether the repository has object id (one line through
// a long-running `git cat-file --batch-check`).
func (r *localRepo) hasObject(ctx context.Context, id plumbing.Hash) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.startLocked(ctx); err != nil {
		return false, err
	}
	if _, err := fmt.Fprintf(r.in, "%s\n", id); err != nil {
		return false, fmt.Errorf("git cat-file: %w", err)
	}
	line, err := r.out.ReadString('\n')
	if err != nil {
		return false, fmt.Errorf("git cat-file: %w", err)
	}
	return !strings.HasSuffix(line, " missing\n"), nil
}

// packDir returns the directory new packs go to: objects/pack of
// $GIT_OBJECT_DIRECTORY, else of $GIT_DIR.
func (r *localRepo) packDir(getenv func(string) string) (string, error) {
	objects := getenv("GIT_OBJECT_DIRECTORY")
	if objects == "" {
		objects = filepath.Join(r.gitDir, "objects")
	} else if !filepath.IsAbs(objects) {
		objects = filepath.Join(r.git.dir, objects)
	}
	dir := filepath.Join(objects, "pack")
	return dir, os.MkdirAll(dir, 0o755)
}

// updateRef points ref at id, if it still points at old (zero: whatever it
// points at).
func (r *localRepo) updateRef(ctx context.Context, ref string, id, old plumbing.Hash) error {
	args := []string{"update-ref", "-m", "git-remote-relay: fetch", ref, id.String()}
	if !old.IsZero() {
		args = append(args, old.String())
	}
	_, err := r.git.output(ctx, nil, args...)
	return err
}

func (r *localRepo) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.batch != nil {
		r.in.Close()
		r.batch.Wait()
		r.batch = nil
	}
}
