package history

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// gen deterministically generates a folder's history: a first snapshot that
// adds nfiles files, then snapshots that modify 1–3 files, with occasional
// renames (moves too), additions and deletions.
type gen struct {
	rng     *rand.Rand
	folder  store.FolderID
	files   []store.File // sorted by path
	version int
	seq     uint64
	t       time.Time
	nextID  int
	blobs   map[store.BlobID][]byte // contents, when kept
	n       int
}

var genDirs = []string{"", "notes", "notes/daily", "projects/alpha", "projects/beta/specs",
	"attachments", "Ünïcødé dir", "a", "a-b", "a.b", "deep/er/and/deeper/still"}

var genUsers = []string{"0f8e1c7a-users-0001", "0f8e1c7a-users-0002", "0f8e1c7a-users-0003", "0f8e1c7a-users-0004"}

func newGen(seed uint64, nfiles int, keepBlobs bool) *gen {
	g := &gen{
		rng: rand.New(rand.NewPCG(seed, 0x5eed)),
		folder: store.FolderID{
			Relay:  "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
			Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479",
		},
		t: time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC),
		n: nfiles,
	}
	if keepBlobs {
		g.blobs = make(map[store.BlobID][]byte)
	}
	return g
}

func (g *gen) newPath() string {
	g.nextID++
	dir := genDirs[g.rng.IntN(len(genDirs))]
	ext := []string{".md", ".md", ".md", ".canvas", ".png"}[g.rng.IntN(5)]
	name := fmt.Sprintf("file %04d%s", g.nextID, ext)
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func (g *gen) blob(path string) (store.BlobID, int64) {
	g.version++
	data := []byte(fmt.Sprintf("%s\nversion %d\n", path, g.version))
	id := store.BlobIDOf(data)
	if g.blobs != nil {
		g.blobs[id] = data
	}
	return id, int64(len(data))
}

func (g *gen) add(path string) {
	id, size := g.blob(path)
	f := store.File{Path: path, Blob: id, Size: size, DocID: fmt.Sprintf("doc-%d", g.nextID), Kind: "markdown"}
	i, found := slices.BinarySearchFunc(g.files, path, func(f store.File, p string) int { return strings.Compare(f.Path, p) })
	if found {
		panic("duplicate " + path)
	}
	g.files = slices.Insert(g.files, i, f)
}

// next returns the next snapshot, with its own copy of the files.
func (g *gen) next() *store.Snapshot {
	g.seq++
	g.t = g.t.Add(time.Duration(1+g.rng.IntN(600))*time.Second + time.Duration(g.rng.IntN(1e9)))
	snap := &store.Snapshot{Folder: g.folder, Seq: g.seq, Time: g.t}
	for _, u := range genUsers {
		if g.rng.IntN(3) == 0 {
			snap.Users = append(snap.Users, u)
		}
	}
	if g.seq == 1 {
		for range g.n {
			p := g.newPath()
			g.add(p)
			snap.Changes = append(snap.Changes, store.Change{Kind: store.ChangeAdded, Path: p})
		}
	} else {
		switch r := g.rng.IntN(100); {
		case r < 5 && len(g.files) > 1: // rename or move
			i := g.rng.IntN(len(g.files))
			old := g.files[i]
			g.files = slices.Delete(g.files, i, i+1)
			p := g.newPath()
			g.add(p)
			j, _ := slices.BinarySearchFunc(g.files, p, func(f store.File, p string) int { return strings.Compare(f.Path, p) })
			if g.rng.IntN(2) == 0 {
				g.files[j].Blob, g.files[j].Size = old.Blob, old.Size // pure rename
			}
			snap.Changes = append(snap.Changes, store.Change{Kind: store.ChangeRenamed, Path: p, OldPath: old.Path})
		case r < 8:
			p := g.newPath()
			g.add(p)
			snap.Changes = append(snap.Changes, store.Change{Kind: store.ChangeAdded, Path: p})
		case r < 10 && len(g.files) > 1:
			i := g.rng.IntN(len(g.files))
			snap.Changes = append(snap.Changes, store.Change{Kind: store.ChangeDeleted, Path: g.files[i].Path})
			g.files = slices.Delete(g.files, i, i+1)
		default:
			seen := map[int]bool{}
			for range 1 + g.rng.IntN(3) {
				i := g.rng.IntN(len(g.files))
				if seen[i] {
					continue
				}
				seen[i] = true
				g.files[i].Blob, g.files[i].Size = g.blob(g.files[i].Path)
				snap.Changes = append(snap.Changes, store.Change{Kind: store.ChangeModified, Path: g.files[i].Path})
			}
		}
	}
	snap.Files = slices.Clone(g.files)
	return snap
}

func (g *gen) history(n int) []*store.Snapshot {
	out := make([]*store.Snapshot, n)
	for i := range out {
		out[i] = g.next()
	}
	return out
}
