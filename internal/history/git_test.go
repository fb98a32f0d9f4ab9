package history

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// gitEnv is the environment for the git CLI in tests: no user or system
// configuration, no inherited GIT_* variables.
func gitEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+t.TempDir(),
		"LC_ALL=C", "TZ=America/St_Johns")
}

func needGit(t *testing.T) {
	t.Helper()
	testreq.Git(t)
}

// git runs the git CLI in dir with stdin and returns its stdout.
func git(t *testing.T, dir string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(t)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// bareRepo makes an empty bare repository with branch main and returns its
// directory and a go-git storage on it.
func bareRepo(t *testing.T) (string, *filesystem.Storage) {
	t.Helper()
	dir := t.TempDir()
	git(t, dir, nil, "init", "--quiet", "--bare", "-b", "main", ".")
	return dir, filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
}

// putBlobs writes the contents of blobs into st.
func putBlobs(t *testing.T, st *filesystem.Storage, blobs map[store.BlobID][]byte) {
	t.Helper()
	for id, data := range blobs {
		obj := st.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		obj.SetSize(int64(len(data)))
		w, _ := obj.Writer()
		w.Write(data)
		w.Close()
		h, err := st.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		if h != plumbing.Hash(id) {
			t.Fatalf("blob id %s, git says %s", id, h)
		}
	}
}

func setRef(t *testing.T, st *filesystem.Storage, name string, h plumbing.Hash) {
	t.Helper()
	if err := st.SetReference(plumbing.NewHashReference(plumbing.ReferenceName(name), h)); err != nil {
		t.Fatal(err)
	}
}
