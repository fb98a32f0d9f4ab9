package store

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// BenchmarkStoreSize measures how the store's size on disk compares with
// `git gc --aggressive` of the same history (target: at most 1.5×).
//
//	go test -tags nomsgpack -run '^$' -bench StoreSize -benchtime 1x ./internal/store
//
// History: a folder of 300 files (generated markdown notes of varied sizes
// in a dozen directories, plus a few binary attachments) and 5,000
// snapshots. Every snapshot advances one growing document by a chunk of the
// seph-blog1 editing trace (../shared/traces, CC BY 4.0, Joseph Gentle);
// some also edit, rename, delete or add other notes. The store gets each
// changed document with PutBlob (base = its previous version) and each
// snapshot with AddSnapshot (with doc states, as ingest writes them); git
// gets the same trees as commits through `git fast-import`, then
// `git gc --aggressive --prune=now`. Sizes are allocated blocks (st_blocks)
// of every file, measured after Close.
func BenchmarkStoreSize(b *testing.B) {
	tracePath := os.Getenv("RELAY_TRACE")
	if tracePath == "" {
		tracePath = filepath.Join("..", "..", "..", "shared", "traces", "seph-blog1.json.gz")
		if _, err := os.Stat(tracePath); err != nil {
			tracePath = "/work/shared/traces/seph-blog1.json.gz"
		}
	}
	tr, err := loadTrace(tracePath)
	if err != nil {
		b.Skipf("editing trace not available (%v): set RELAY_TRACE to seph-blog1.json.gz", err)
	}
	testreq.Git(b)
	snapshots := 5000
	if s := os.Getenv("RELAY_SNAPSHOTS"); s != "" {
		fmt.Sscan(s, &snapshots)
	}
	for i := 0; i < b.N; i++ {
		runStoreSize(b, tr, snapshots)
	}
}

type editTrace struct {
	StartContent string `json:"startContent"`
	EndContent   string `json:"endContent"`
	Txns         []struct {
		Patches [][3]any `json:"patches"`
	} `json:"txns"`
}

func loadTrace(path string) (*editTrace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	var tr editTrace
	if err := json.NewDecoder(zr).Decode(&tr); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &tr, nil
}

// runeDoc replays trace patches (positions in code points).
type runeDoc struct{ r []rune }

func (d *runeDoc) apply(pos, del int, ins string) {
	insR := []rune(ins)
	tail := len(d.r) - pos - del
	n := pos + len(insR) + tail
	if n > cap(d.r) {
		nr := make([]rune, len(d.r), 2*n)
		copy(nr, d.r)
		d.r = nr
	}
	old := d.r
	d.r = d.r[:n]
	copy(d.r[pos+len(insR):], old[pos+del:pos+del+tail])
	copy(d.r[pos:], insR)
}

// vocabulary is a Zipf-distributed generated word list: text with about
// the redundancy of real prose.
type vocabulary struct {
	words []string
	zipf  *rand.Zipf
	r     *rand.Rand
}

func newVocabulary(r *rand.Rand) *vocabulary {
	syll := strings.Fields("ka to ri an el mo su ve la ni or pe th ing ed er st qu ou ay")
	v := &vocabulary{r: r, zipf: rand.NewZipf(r, 1.1, 2, 3999)}
	for i := 0; i < 4000; i++ {
		var w strings.Builder
		for n := 1 + r.IntN(3); n > 0; n-- {
			w.WriteString(syll[r.IntN(len(syll))])
		}
		v.words = append(v.words, w.String())
	}
	return v
}

func (v *vocabulary) sentence() string {
	n := 5 + v.r.IntN(15)
	ws := make([]string, n)
	for i := range ws {
		ws[i] = v.words[v.zipf.Uint64()]
	}
	s := strings.Join(ws, " ")
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

func (v *vocabulary) note(title string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\ntags: #%s #%s\n\n", title, v.words[v.r.IntN(50)], v.words[v.r.IntN(200)])
	for b.Len() < size {
		switch v.r.IntN(8) {
		case 0:
			fmt.Fprintf(&b, "## %s\n\n", strings.TrimSuffix(v.sentence(), "."))
		case 1:
			for n := 2 + v.r.IntN(4); n > 0; n-- {
				fmt.Fprintf(&b, "- %s\n", v.sentence())
			}
			b.WriteByte('\n')
		case 2:
			fmt.Fprintf(&b, "See [[%s]] and %s\n\n", v.words[v.r.IntN(400)], v.sentence())
		default:
			for n := 2 + v.r.IntN(5); n > 0; n-- {
				b.WriteString(v.sentence())
				b.WriteByte(' ')
			}
			b.WriteString("\n\n")
		}
	}
	return b.Bytes()
}

// editNote changes a note the way a person does: a sentence added,
// reworded or removed somewhere, or a line appended.
func (v *vocabulary) editNote(data []byte) []byte {
	lines := strings.Split(string(data), "\n")
	i := v.r.IntN(len(lines))
	switch v.r.IntN(4) {
	case 0:
		lines[i] = v.sentence()
	case 1:
		if len(lines) > 5 {
			lines = slices.Delete(lines, i, i+1)
			break
		}
		fallthrough
	case 2:
		lines = slices.Insert(lines, i, v.sentence())
	default:
		lines = append(lines, "- "+v.sentence())
	}
	return []byte(strings.Join(lines, "\n"))
}

type benchFile struct {
	File
	data []byte
}

func runStoreSize(b *testing.B, tr *editTrace, snapshots int) {
	tmp := b.TempDir()
	storeDir := filepath.Join(tmp, "store")
	gitDir := filepath.Join(tmp, "repo.git")
	streamPath := filepath.Join(tmp, "fast-import")

	s, err := Open(storeDir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	streamFile, err := os.Create(streamPath)
	if err != nil {
		b.Fatal(err)
	}
	stream := bufio.NewWriterSize(streamFile, 1<<20)

	r := rand.New(rand.NewPCG(2024, 5))
	voc := newVocabulary(r)
	folder := FolderID{Relay: uuidFrom(r), Folder: uuidFrom(r)}
	users := []string{uuidFrom(r), uuidFrom(r), uuidFrom(r)}
	topics := []string{"inbox", "projects", "projects/relay", "journal", "journal/2024", "reading", "people", "ideas", "meetings", "reference", "recipes", "travel"}
	files := map[string]*benchFile{}
	newDoc := func(path, kind string, data []byte) {
		files[path] = &benchFile{File{Path: path, DocID: uuidFrom(r), Kind: kind, Size: int64(len(data))}, data}
	}
	notePath := func() string {
		for {
			p := fmt.Sprintf("%s/%s-%s.md", topics[r.IntN(len(topics))], voc.words[r.IntN(800)], voc.words[r.IntN(800)])
			if files[p] == nil {
				return p
			}
		}
	}
	for i := 0; i < 295; i++ {
		size := int(200 * math.Pow(100, r.Float64())) // 200 B .. 20 KB, log-uniform
		p := notePath()
		newDoc(p, "markdown", voc.note(strings.TrimSuffix(filepath.Base(p), ".md"), size))
	}
	for i := 0; i < 4; i++ {
		newDoc(fmt.Sprintf("attachments/image-%d.png", i), "file", randBytes(r, 8000+r.IntN(32000)))
	}
	const blogPath = "blog/crdts-go-brrr.md"
	blog := &runeDoc{r: []rune(tr.StartContent)}
	newDoc(blogPath, "markdown", []byte(tr.StartContent))

	var (
		putTime, addTime time.Duration
		prevBlob         = map[string]BlobID{} // doc id -> blob
		t0               = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
		txn              = 0
		perSnap          = (len(tr.Txns) + snapshots - 1) / snapshots
		gitBlobs         = map[BlobID]bool{}
	)
	for seq := 1; seq <= snapshots; seq++ {
		changed := map[string]bool{} // paths whose content changed
		var changes []Change
		var drop []string
		if seq == 1 {
			for p, f := range files {
				changed[p] = true
				changes = append(changes, Change{Kind: ChangeAdded, Path: p, DocID: f.DocID})
			}
		}
		// The blog advances by one chunk of the trace.
		for end := min(len(tr.Txns), txn+perSnap); txn < end; txn++ {
			for _, p := range tr.Txns[txn].Patches {
				blog.apply(int(p[0].(float64)), int(p[1].(float64)), p[2].(string))
			}
		}
		if bf := files[blogPath]; seq > 1 {
			bf.data = []byte(string(blog.r))
			changed[blogPath] = true
			changes = append(changes, Change{Kind: ChangeModified, Path: blogPath, DocID: bf.DocID})
		} else {
			bf.data = []byte(string(blog.r))
		}
		if seq > 1 {
			notes := slices.Sorted(maps.Keys(files))
			pickNote := func() *benchFile {
				for {
					f := files[notes[r.IntN(len(notes))]]
					if f.Kind == "markdown" && f.Path != blogPath && !changed[f.Path] {
						return f
					}
				}
			}
			switch x := r.IntN(1000); {
			case x < 80: // edit a note
				f := pickNote()
				f.data = voc.editNote(f.data)
				changed[f.Path] = true
				changes = append(changes, Change{Kind: ChangeModified, Path: f.Path, DocID: f.DocID})
			case x < 90: // rename or move a note
				f := pickNote()
				old := f.Path
				delete(files, old)
				f.Path = notePath()
				files[f.Path] = f
				changes = append(changes, Change{Kind: ChangeRenamed, Path: f.Path, OldPath: old, DocID: f.DocID})
			case x < 95: // delete a note
				f := pickNote()
				delete(files, f.Path)
				drop = append(drop, f.DocID)
				changes = append(changes, Change{Kind: ChangeDeleted, Path: f.Path, DocID: f.DocID})
			case x < 100: // a new note
				p := notePath()
				newDoc(p, "markdown", voc.note(strings.TrimSuffix(filepath.Base(p), ".md"), 300+r.IntN(3000)))
				changed[p] = true
				changes = append(changes, Change{Kind: ChangeAdded, Path: p, DocID: files[p].DocID})
			}
		}

		// Store.
		docs := map[string]DocState{}
		start := time.Now()
		for p := range changed {
			f := files[p]
			id, err := s.PutBlob(f.data, prevBlob[f.DocID])
			if err != nil {
				b.Fatal(err)
			}
			f.Blob, f.Size = id, int64(len(f.data))
			prevBlob[f.DocID] = id
			docs[f.DocID] = DocState{Hash: sha256.Sum256(f.data), Blob: id, Path: p}
		}
		for _, c := range changes {
			if c.Kind == ChangeRenamed {
				f := files[c.Path]
				docs[f.DocID] = DocState{Hash: sha256.Sum256(f.data), Blob: f.Blob, Path: f.Path}
			}
		}
		putTime += time.Since(start)
		tree := make([]File, 0, len(files))
		for _, p := range slices.Sorted(maps.Keys(files)) {
			tree = append(tree, files[p].File)
		}
		who := []string{users[r.IntN(2)]}
		if r.IntN(10) == 0 {
			who = append(who, users[2])
		}
		at := t0.Add(time.Duration(seq)*time.Minute + time.Duration(r.IntN(50))*time.Second)
		slices.SortFunc(changes, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
		start = time.Now()
		if _, err := s.AddSnapshot(&Snapshot{Folder: folder, Time: at, Users: who, Changes: changes, Files: tree}, docs, drop); err != nil {
			b.Fatal(err)
		}
		addTime += time.Since(start)

		// Git: the same tree as a commit.
		var msg strings.Builder
		if len(changes) == 1 {
			fmt.Fprintf(&msg, "%s %s\n", changes[0].Kind, changes[0].Path)
		} else {
			fmt.Fprintf(&msg, "%d changes\n\n", len(changes))
			for _, c := range changes[:min(len(changes), 20)] {
				fmt.Fprintf(&msg, "%s %s\n", c.Kind, c.Path)
			}
		}
		fmt.Fprintf(stream, "commit refs/heads/main\n")
		fmt.Fprintf(stream, "author %s <%s@relay.md> %d +0000\n", who[0], who[0], at.Unix())
		fmt.Fprintf(stream, "committer relay-git-sync <sync@relay-git-sync.invalid> %d +0000\n", at.Unix())
		fmt.Fprintf(stream, "data %d\n%s\n", msg.Len(), msg.String())
		for _, c := range changes {
			switch c.Kind {
			case ChangeDeleted:
				fmt.Fprintf(stream, "D %s\n", c.Path)
			case ChangeRenamed:
				fmt.Fprintf(stream, "D %s\n", c.OldPath)
			}
			if c.Kind == ChangeDeleted {
				continue
			}
			f := files[c.Path]
			if gitBlobs[f.Blob] {
				fmt.Fprintf(stream, "M 100644 %s %s\n", f.Blob, f.Path)
			} else {
				fmt.Fprintf(stream, "M 100644 inline %s\ndata %d\n", f.Path, len(f.data))
				stream.Write(f.data)
				stream.WriteByte('\n')
				gitBlobs[f.Blob] = true
			}
		}
		stream.WriteByte('\n')
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if err := stream.Flush(); err != nil {
		b.Fatal(err)
	}
	streamFile.Close()
	storeBytes := diskUsage(b, storeDir)

	// Check the store against the final tree after reopening.
	s2, err := Open(storeDir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	latest, err := s2.Latest(folder)
	if err != nil || latest.Seq != uint64(snapshots) || len(latest.Files) != len(files) {
		b.Fatalf("latest after reopen: %v", err)
	}
	if got, err := s2.Blob(files[blogPath].Blob); err != nil || string(got) != string(files[blogPath].data) {
		b.Fatalf("blog content after reopen: %v", err)
	}
	start := time.Now()
	if err := s2.Walk(folder, 0, func(*Snapshot) error { return nil }); err != nil {
		b.Fatal(err)
	}
	walkTime := time.Since(start)
	if os.Getenv("RELAY_SIZE_DETAIL") != "" {
		printKeySpaces(s2)
	}
	s2.Close()

	// The same history in git.
	gitStart := time.Now()
	git := func(stdin string, args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+tmp)
		if stdin != "" {
			in, err := os.Open(stdin)
			if err != nil {
				b.Fatal(err)
			}
			defer in.Close()
			cmd.Stdin = in
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("", "init", "--quiet", "--bare", "--template=", gitDir)
	git(streamPath, "-C", gitDir, "fast-import", "--quiet")
	importTime := time.Since(gitStart)
	gcStart := time.Now()
	git("", "-C", gitDir, "gc", "--aggressive", "--prune=now", "--quiet")
	gcTime := time.Since(gcStart)
	gitBytes := diskUsage(b, gitDir)
	packBytes := diskUsage(b, filepath.Join(gitDir, "objects", "pack"))

	ratio := float64(storeBytes) / float64(gitBytes)
	b.ReportMetric(float64(storeBytes), "store-bytes")
	b.ReportMetric(float64(gitBytes), "git-bytes")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(addTime.Microseconds())/float64(snapshots), "µs/AddSnapshot")
	b.ReportMetric(float64(putTime.Microseconds())/float64(snapshots), "µs/PutBlobs")
	fmt.Printf("store size: %d snapshots of %d files: store %d bytes, git gc --aggressive %d bytes (packs %d), ratio %.2f; "+
		"AddSnapshot %v/op, PutBlob of changed docs %v/snapshot, Walk of all %v; git fast-import %v, gc %v\n",
		snapshots, len(files), storeBytes, gitBytes, packBytes, ratio,
		(addTime / time.Duration(snapshots)).Round(time.Microsecond), (putTime / time.Duration(snapshots)).Round(time.Microsecond),
		walkTime.Round(time.Millisecond), importTime.Round(time.Millisecond), gcTime.Round(time.Millisecond))
	if os.Getenv("RELAY_SIZE_DETAIL") != "" {
		printUsage(storeDir)
		printUsage(gitDir)
	}
}

// diskUsage sums the allocated blocks of every file under dir.
func diskUsage(tb testing.TB, dir string) int64 {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return total
}

func printUsage(dir string) {
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, _ := d.Info()
		st := info.Sys().(*syscall.Stat_t)
		fmt.Printf("  %-60s size %10d blocks %10d\n", strings.TrimPrefix(path, dir), info.Size(), st.Blocks*512)
		return nil
	})
}

// printKeySpaces prints, per key prefix, the number of keys and the bytes
// of keys and values before Badger's block compression.
func printKeySpaces(s *Store) {
	type agg struct{ n, k, v int }
	m := map[byte]*agg{}
	s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			a := m[item.Key()[0]]
			if a == nil {
				a = &agg{}
				m[item.Key()[0]] = a
			}
			a.n++
			a.k += len(item.Key())
			a.v += int(item.ValueSize())
		}
		return nil
	})
	for _, p := range slices.Sorted(maps.Keys(m)) {
		a := m[p]
		fmt.Printf("  key space %q: %6d keys, %8d key bytes, %9d value bytes (before block compression)\n", p, a.n, a.k, a.v)
	}
}
