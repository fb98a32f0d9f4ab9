package remotehelper

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// vault deterministically generates the history of a notes folder straight
// into a store (store.AddSnapshot, no Relay Server): a first snapshot with
// nfiles files (markdown notes of a few KB, some canvases, binary
// attachments), then snapshots that edit 1–3 notes (typing: lines appended,
// replaced or inserted), with occasional additions, renames, moves, deletions
// and attachment updates. The same seed gives the same history.
type vault struct {
	rng    *rand.Rand
	st     *store.Store
	mirror *store.Store // when set, gets every blob and snapshot too
	folder store.FolderID
	files  map[string]*vfile
	t      time.Time
	nextID int
	nfiles int
}

type vfile struct {
	doc, kind string
	data      []byte
	blob      store.BlobID
}

var vaultDirs = []string{"", "notes", "notes/daily", "projects/alpha", "projects/beta/specs",
	"attachments", "Ünïcødé dir", "archive/2024"}

var vaultWords = strings.Fields(`the of and to in is that for it as was with be by on not he this are or
his from at which but have an they you were her she there been one all would their we him when who
more no if out so said what up its about into than them can only other new some could time these two
may then do first any my now such like our over man me even most made after also did many before must
through back years where much your way well down should because each just those people how too little
state good very make world still own see men work long get here between both life being under never day
same another know while last might us great old year off come since against go came right used take
three relay sync git vault note canvas markdown obsidian link draft plan idea`)

func newVault(st *store.Store, folder store.FolderID, seed uint64, nfiles int) *vault {
	return &vault{
		rng: rand.New(rand.NewPCG(seed, 0x7e1a7)), st: st, folder: folder,
		files: make(map[string]*vfile), nfiles: nfiles,
		t: time.Date(2025, 6, 1, 9, 0, 0, 123456789, time.UTC),
	}
}

func (v *vault) line() string {
	n := 4 + v.rng.IntN(14)
	w := make([]string, n)
	for i := range w {
		w[i] = vaultWords[v.rng.IntN(len(vaultWords))]
	}
	return strings.Join(w, " ")
}

func (v *vault) newPath(ext string) string {
	v.nextID++
	dir := vaultDirs[v.rng.IntN(len(vaultDirs))]
	if ext == ".png" {
		dir = "attachments"
	}
	name := fmt.Sprintf("note %04d%s", v.nextID, ext)
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func (v *vault) newContent(kind string) []byte {
	switch kind {
	case "file":
		b := make([]byte, 2048+v.rng.IntN(16384))
		for i := range b {
			b[i] = byte(v.rng.Uint32())
		}
		copy(b, "\x89PNG\r\n\x1a\n\x00")
		return b
	case "canvas":
		return []byte(fmt.Sprintf(`{"nodes":[{"id":"%x","type":"text","text":%q,"x":0,"y":0,"width":250,"height":60}],"edges":[]}`, v.rng.Uint64(), v.line()))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", v.line())
	for range 10 + v.rng.IntN(40) {
		b.WriteString(v.line())
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// edit changes a note as typing would.
func (v *vault) edit(data []byte) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	switch r := v.rng.IntN(10); {
	case r < 6:
		lines = append(lines, v.line()+"\n")
	case r < 9:
		lines[v.rng.IntN(len(lines))] = v.line() + "\n"
	default:
		i := v.rng.IntN(len(lines) + 1)
		lines = slices.Insert(lines, i, v.line()+"\n")
	}
	return []byte(strings.Join(lines, ""))
}

func (v *vault) put(data []byte, base store.BlobID) store.BlobID {
	id, err := v.st.PutBlob(data, base)
	if err != nil {
		panic(err)
	}
	if v.mirror != nil {
		if _, err := v.mirror.PutBlob(data, base); err != nil {
			panic(err)
		}
	}
	return id
}

func (v *vault) add(snap *store.Snapshot) {
	kind, ext := "markdown", ".md"
	switch r := v.rng.IntN(20); {
	case r == 0:
		kind, ext = "canvas", ".canvas"
	case r < 3:
		kind, ext = "file", ".png"
	}
	p := v.newPath(ext)
	f := &vfile{doc: fmt.Sprintf("%08x-0000-4000-8000-%012x", v.nextID, v.rng.Uint64()>>16), kind: kind, data: v.newContent(kind)}
	f.blob = v.put(f.data, store.BlobID{})
	v.files[p] = f
	snap.Changes = append(snap.Changes, store.Change{Kind: store.ChangeAdded, Path: p, DocID: f.doc})
}

func (v *vault) sortedPaths() []string {
	ps := make([]string, 0, len(v.files))
	for p := range v.files {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func (v *vault) pick(kind string) string {
	ps := v.sortedPaths()
	for range 20 {
		p := ps[v.rng.IntN(len(ps))]
		if kind == "" || v.files[p].kind == kind {
			return p
		}
	}
	return ps[v.rng.IntN(len(ps))]
}

// next adds the next snapshot to the store and returns it.
func (v *vault) next() (*store.Snapshot, error) {
	v.t = v.t.Add(time.Duration(10+v.rng.IntN(900))*time.Second + time.Duration(v.rng.IntN(1e9)))
	snap := &store.Snapshot{Folder: v.folder, Time: v.t}
	for _, u := range []string{"a1b2c3d4-0000-4000-8000-000000000001", "a1b2c3d4-0000-4000-8000-000000000002", "a1b2c3d4-0000-4000-8000-000000000003"} {
		if v.rng.IntN(3) == 0 {
			snap.Users = append(snap.Users, u)
		}
	}
	if len(v.files) == 0 {
		for range v.nfiles {
			v.add(snap)
		}
	} else {
		switch r := v.rng.IntN(100); {
		case r < 2: // rename or move, same content
			old := v.pick("")
			f := v.files[old]
			delete(v.files, old)
			ext := old[strings.LastIndexByte(old, '.'):]
			p := v.newPath(ext)
			v.files[p] = f
			snap.Changes = append(snap.Changes, store.Change{Kind: store.ChangeRenamed, Path: p, OldPath: old, DocID: f.doc})
		case r < 4:
			v.add(snap)
		case r < 5 && len(v.files) > 10:
			p := v.pick("")
			snap.Changes = append(snap.Changes, store.Change{Kind: store.ChangeDeleted, Path: p, DocID: v.files[p].doc})
			delete(v.files, p)
		case r < 6:
			p := v.pick("file")
			f := v.files[p]
			f.data = v.newContent(f.kind)
			f.blob = v.put(f.data, f.blob)
			snap.Changes = append(snap.Changes, store.Change{Kind: store.ChangeModified, Path: p, DocID: f.doc})
		default:
			seen := map[string]bool{}
			for range 1 + v.rng.IntN(3) {
				p := v.pick("markdown")
				if seen[p] {
					continue
				}
				seen[p] = true
				f := v.files[p]
				if f.kind == "markdown" {
					f.data = v.edit(f.data)
				} else {
					f.data = v.newContent(f.kind)
				}
				f.blob = v.put(f.data, f.blob)
				snap.Changes = append(snap.Changes, store.Change{Kind: store.ChangeModified, Path: p, DocID: f.doc})
			}
		}
	}
	for _, p := range v.sortedPaths() {
		f := v.files[p]
		snap.Files = append(snap.Files, store.File{Path: p, Blob: f.blob, Size: int64(len(f.data)), DocID: f.doc, Kind: f.kind})
	}
	if v.mirror != nil {
		c := *snap
		if _, err := v.mirror.AddSnapshot(&c, nil, nil); err != nil {
			return nil, err
		}
	}
	if _, err := v.st.AddSnapshot(snap, nil, nil); err != nil {
		return nil, err
	}
	return snap, nil
}

// grow adds n snapshots.
func (v *vault) grow(tb testing.TB, n int) {
	tb.Helper()
	for range n {
		if _, err := v.next(); err != nil {
			tb.Fatal(err)
		}
	}
}
