package mirror

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/objfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// The mirror repository's references. Only these exist: the mirror has no
// branches of its own, so nothing in it can be mistaken for a checkout.
const (
	refPushed = plumbing.ReferenceName("refs/relay/pushed") // last commit the remote accepted
	refRemote = plumbing.ReferenceName("refs/relay/remote") // the remote branch, as last fetched
	refHead   = plumbing.ReferenceName("refs/relay/head")   // the commit being pushed
)

// objectCacheSize bounds each mirror's cache of decoded objects.
const objectCacheSize = 8 * cache.MiByte

// largeObject: go-git reads larger objects lazily (a stream over the loose
// file or pack) instead of whole into memory, so the pack encoder copies
// an attachment of hundreds of MB through zlib without holding it.
const largeObject = 4 << 20

// repo is a connector's local bare mirror: go-git filesystem storage that
// C git can read too (git log, git pack-objects).
type repo struct {
	path  string
	st    *filesystem.Storage
	loose int // loose objects (an estimate at open, then counted)
}

// openRepo opens the bare repository at path, creating it if needed.
func openRepo(path string) (*repo, error) {
	for _, d := range []string{"objects/pack", "objects/info", "refs/heads", "refs/tags"} {
		if err := os.MkdirAll(filepath.Join(path, d), 0o755); err != nil {
			return nil, fmt.Errorf("mirror repository %s: %w", path, err)
		}
	}
	st := filesystem.NewStorageWithOptions(osfs.New(path), cache.NewObjectLRU(objectCacheSize), filesystem.Options{LargeObjectThreshold: largeObject})
	if _, err := os.Stat(filepath.Join(path, "HEAD")); errors.Is(err, os.ErrNotExist) {
		if _, err := git.Init(st, nil); err != nil && !errors.Is(err, git.ErrRepositoryAlreadyExists) {
			st.Close()
			return nil, fmt.Errorf("mirror repository %s: init: %w", path, err)
		}
	}
	return &repo{path: path, st: st, loose: looseCount(path)}, nil
}

func (r *repo) close() error { return r.st.Close() }

// has reports whether object h is stored.
func (r *repo) has(h plumbing.Hash) bool {
	return !h.IsZero() && r.st.HasEncodedObject(h) == nil
}

// ref returns the value of a reference (zero when unset).
func (r *repo) ref(name plumbing.ReferenceName) (plumbing.Hash, error) {
	ref, err := r.st.Reference(name)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("mirror repository %s: %s: %w", r.path, name, err)
	}
	return ref.Hash(), nil
}

// setRef points name at h (removes it for the zero hash).
func (r *repo) setRef(name plumbing.ReferenceName, h plumbing.Hash) error {
	var err error
	if h.IsZero() {
		err = r.st.RemoveReference(name)
	} else {
		err = r.st.SetReference(plumbing.NewHashReference(name, h))
	}
	if err != nil {
		return fmt.Errorf("mirror repository %s: %s: %w", r.path, name, err)
	}
	return nil
}

// putBlob stores data as a blob (unless present) and returns its id.
func (r *repo) putBlob(data []byte) (plumbing.Hash, error) {
	h := plumbing.ComputeHash(plumbing.BlobObject, data)
	return h, r.putBlobFrom(h, int64(len(data)), bytes.NewReader(data))
}

// putBlobFrom stores blob h, of size bytes read from src, unless it is
// present. The content is streamed into a loose object (zlib as it goes),
// so a large attachment is never held in memory; go-git's own object
// writer (NewEncodedObject) buffers the whole object. A content that does
// not hash to h is an error, and nothing is stored.
func (r *repo) putBlobFrom(h plumbing.Hash, size int64, src io.Reader) (err error) {
	if r.has(h) {
		return nil
	}
	fail := func(err error) error { return fmt.Errorf("mirror repository %s: storing blob %s: %w", r.path, h, err) }
	tmp, err := os.CreateTemp(filepath.Join(r.path, "objects"), "tmp_obj_")
	if err != nil {
		return fail(err)
	}
	defer func() {
		tmp.Close()
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	w := objfile.NewWriter(tmp)
	if err := w.WriteHeader(plumbing.BlobObject, size); err != nil {
		w.Close()
		return fail(err)
	}
	n, err := io.Copy(w, src)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("content is %d bytes, want %d", n, size)
	}
	if err == nil && w.Hash() != h {
		err = fmt.Errorf("content hashes to %s", w.Hash())
	}
	if err == nil {
		err = tmp.Chmod(0o444) // as git and go-git leave loose objects
	}
	if err == nil {
		err = tmp.Close()
	}
	if err != nil {
		return fail(err)
	}
	hex := h.String()
	dir := filepath.Join(r.path, "objects", hex[:2])
	if err = os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, hex[2:])); err != nil {
		return fail(err)
	}
	r.loose++
	return nil
}

// putRaw stores an object of type t whose content is b, returning its id.
func (r *repo) putRaw(t plumbing.ObjectType, b []byte) (plumbing.Hash, error) {
	h := plumbing.ComputeHash(t, b)
	if r.has(h) {
		return h, nil
	}
	obj := r.st.NewEncodedObject()
	obj.SetType(t)
	obj.SetSize(int64(len(b)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(b); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := r.st.SetEncodedObject(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("mirror repository %s: storing %s %s: %w", r.path, t, h, err)
	}
	r.loose++
	return h, nil
}

// commit reads commit h.
func (r *repo) commit(h plumbing.Hash) (*object.Commit, error) {
	c, err := object.GetCommit(r.st, h)
	if err != nil {
		return nil, fmt.Errorf("mirror repository %s: commit %s: %w", r.path, h, err)
	}
	return c, nil
}

// errWalkLimit means isAncestor gave up before deciding.
var errWalkLimit = errors.New("ancestry walk limit reached")

// isAncestor reports whether anc is desc or one of its ancestors, looking
// at no more than limit commits (errWalkLimit past it). Commits missing from
// the mirror end their line of the walk.
func (r *repo) isAncestor(anc, desc plumbing.Hash, limit int) (bool, error) {
	if anc == desc {
		return true, nil
	}
	seen := map[plumbing.Hash]bool{desc: true}
	queue := []plumbing.Hash{desc}
	for len(queue) > 0 {
		if len(seen) > limit {
			return false, errWalkLimit
		}
		h := queue[0]
		queue = queue[1:]
		c, err := object.GetCommit(r.st, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("mirror repository %s: commit %s: %w", r.path, h, err)
		}
		for _, p := range c.ParentHashes {
			if p == anc {
				return true, nil
			}
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false, nil
}

// countingStorer counts the objects the synthesizer adds to the mirror, so
// that loose objects get packed once there are many.
type countingStorer struct {
	*filesystem.Storage
	added *int
}

func (c countingStorer) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	h, err := c.Storage.SetEncodedObject(o)
	if err == nil {
		*c.added++
	}
	return h, err
}

// repackThreshold is the number of loose objects from which the mirror is
// packed after a push: loose objects cost a file (and 4 KiB of disk) each,
// and make every later walk slower.
const repackThreshold = 2000

// looseCount estimates the loose objects of the repository from one of its
// 256 fan-out directories, as git gc --auto does.
func looseCount(path string) int {
	entries, err := os.ReadDir(filepath.Join(path, "objects", "17"))
	if err != nil {
		return 0
	}
	return len(entries) * 256
}

// repack packs the loose objects: with C git when installed (`git repack
// -d`, with deltas, and every 20 packs into one), else with go-git's
// encoder (no deltas), then reopens the storage so that go-git sees the
// new packs.
func (r *repo) repack(gitBin string) error {
	if gitBin != "" {
		args := []string{"-c", "repack.writeBitmaps=false", "repack", "-d", "-q"}
		if packs, _ := filepath.Glob(filepath.Join(r.path, "objects", "pack", "*.pack")); len(packs) >= 20 {
			args = append(args, "-a")
		}
		cmd := exec.Command(gitBin, args...)
		cmd.Env = append(os.Environ(), "GIT_DIR="+r.path)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("mirror repository %s: git repack: %v: %s", r.path, err, bytes.TrimSpace(out))
		}
	} else if err := r.repackGoGit(); err != nil {
		return fmt.Errorf("mirror repository %s: repack: %w", r.path, err)
	}
	if err := r.st.Close(); err != nil {
		return err
	}
	r.st = filesystem.NewStorageWithOptions(osfs.New(r.path), cache.NewObjectLRU(objectCacheSize), filesystem.Options{LargeObjectThreshold: largeObject})
	return nil
}

// repackGoGit writes every loose object into one pack (without deltas:
// go-git's delta search is slow, see BenchmarkPushLongHistory) and
// removes the loose copies.
func (r *repo) repackGoGit() error {
	var loose []plumbing.Hash
	if err := r.st.ForEachObjectHash(func(h plumbing.Hash) error {
		loose = append(loose, h)
		return nil
	}); err != nil {
		return err
	}
	if len(loose) == 0 {
		return nil
	}
	w, err := r.st.PackfileWriter()
	if err != nil {
		return err
	}
	if _, err := packfile.NewEncoder(w, r.st, false).Encode(loose, 0); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	for _, h := range loose {
		if err := r.st.DeleteLooseObject(h); err != nil {
			return err
		}
	}
	return nil
}
