package remotehelper

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/relay-git-sync/relay-git-sync/internal/history"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
	"github.com/relay-git-sync/relay-git-sync/server"
)

// BenchmarkClone20k compares git-remote-relay with plain git on the same
// history, in one run, in both of its forms:
//
//   - a data dir with a 20,000-snapshot history of a 300-file notes folder
//     (generated straight into the store, see vault), cloned through
//     relay::/path/to/data-dir/<relay>/<folder> (the data-dir form: no HTTP);
//   - a copy of that data dir held by serve's real HTTP handler
//     (server.New over the store, as `relay-git-sync serve` runs it, in this
//     process on 127.0.0.1), cloned through
//     relay::http://127.0.0.1:PORT/<relay>/<folder> (the deployed form);
//   - the same history as a local bare repository (a relay clone, repacked
//     with `git repack -adf`, as a server's repository would be), cloned
//     with `git clone --no-local` (pack-objects, index-pack, checkout);
//   - then 100 new snapshots (in both stores), fetched the three ways (the
//     bare repository gets them first).
//
// Each timing is the best of three runs, interleaved so that all three see
// the same machine load. It reports wall-clock times in seconds and the
// ratios relay/git (targets: clone ≤ 1.0, fetch ≤ 1.5); CPU ratios count
// git and its children only (not the in-process server). Run it with
//
//	go test -tags nomsgpack -run '^$' -bench Clone20k -benchtime 1x ./remotehelper
func BenchmarkClone20k(b *testing.B) {
	const snapshots, files, more = 20000, 300, 100
	const token = "bench-read-api-token-0123456789"
	g := newGitEnv(b, EnvToken+"="+token)
	work := b.TempDir()
	dir := filepath.Join(work, "data")
	t0 := time.Now()
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	v := newVault(st, testFolder, 1, files)
	v.grow(b, snapshots)
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d snapshots in %v", snapshots, time.Since(t0).Round(time.Millisecond))
	dirURL := "relay::" + dir + "/" + testFolder.String()

	// The served copy.
	served := filepath.Join(work, "served")
	if out, err := exec.Command("cp", "-a", dir, served).CombinedOutput(); err != nil {
		b.Fatalf("copying the data dir: %v %s", err, out)
	}
	sst, err := store.Open(filepath.Join(served, "db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sst.Close() }) // after the server and its builds stop
	httpURL := "relay::" + serveForBench(b, sst, filepath.Join(served, PackDirName), token) + "/" + testFolder.String()

	// The reference repository.
	g.git(work, "clone", "-q", "--bare", dirURL, "ref.git")
	ref := filepath.Join(work, "ref.git")
	t0 = time.Now()
	g.git(ref, "repack", "-adfq")
	b.Logf("repack -adf of the reference: %v", time.Since(t0).Round(time.Millisecond))

	type timing struct{ wall, cpu time.Duration }
	forms := []struct {
		name, url string
		clone     timing
		fetch     timing
		// Every run's wall time: the first relay clones are cold (no
		// kept pack yet), the best of three is warm.
		clones, fetches []time.Duration
	}{{name: "dir", url: dirURL}, {name: "http", url: httpURL}, {name: "git", url: ref}}
	best := func(m *timing, wall, cpu time.Duration) {
		if m.wall == 0 || wall < m.wall {
			m.wall = wall
		}
		if m.cpu == 0 || cpu < m.cpu {
			m.cpu = cpu
		}
	}
	name := func(form string, i int) string { return filepath.Join(work, fmt.Sprintf("%s-%d", form, i)) }

	// The reference's clone kept its pack in the data dir: the first data
	// dir clone measured starts cold, as the first HTTP clone does.
	if err := os.RemoveAll(filepath.Join(dir, PackDirName)); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	for range b.N {
		for i := range 3 {
			for k := range forms {
				f := &forms[k]
				d := name(f.name, i)
				if err := os.RemoveAll(d); err != nil {
					b.Fatal(err)
				}
				args := []string{"clone", "-q", f.url, d}
				if f.name == "git" {
					args = []string{"clone", "-q", "--no-local", f.url, d}
				}
				w, c := g.timed(work, args...)
				best(&f.clone, w, c)
				f.clones = append(f.clones, w.Round(time.Millisecond))
			}
		}
		st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		v.st, v.mirror = st, sst
		v.grow(b, more)
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		g.git(ref, "fetch", "-q", dirURL, "+refs/heads/main:refs/heads/main")
		for i := range 3 {
			var tips []string
			for k := range forms {
				f := &forms[k]
				w, c := g.timed(name(f.name, i), "fetch", "-q")
				best(&f.fetch, w, c)
				f.fetches = append(f.fetches, w.Round(time.Millisecond))
				tips = append(tips, revParse(g, name(f.name, i), "origin/main"))
			}
			if tips[0] != tips[2] || tips[1] != tips[2] {
				b.Fatalf("after fetch: origin/main is %s (data dir), %s (http), %s (git)", tips[0], tips[1], tips[2])
			}
		}
	}
	b.StopTimer()
	git := forms[2]
	for _, f := range forms {
		b.Logf("%-4s clone (best of 3): %v wall %v CPU; fetch of %d snapshots: %v wall %v CPU; clones %v, fetches %v", f.name, f.clone.wall, f.clone.cpu, more, f.fetch.wall, f.fetch.cpu, f.clones, f.fetches)
		b.ReportMetric(f.clone.wall.Seconds(), f.name+"-clone-s")
		b.ReportMetric(f.fetch.wall.Seconds(), f.name+"-fetch-s")
		if f.name == "git" {
			continue
		}
		b.ReportMetric(f.clone.wall.Seconds()/git.clone.wall.Seconds(), f.name+"-clone-ratio")
		b.ReportMetric(f.fetch.wall.Seconds()/git.fetch.wall.Seconds(), f.name+"-fetch-ratio")
		b.ReportMetric(f.clone.cpu.Seconds()/git.clone.cpu.Seconds(), f.name+"-clone-cpu-ratio")
		b.ReportMetric(f.fetch.cpu.Seconds()/git.fetch.cpu.Seconds(), f.name+"-fetch-cpu-ratio")
	}
}

// serveForBench runs serve's real HTTP handler (server.New, with the
// read API and the kept packs as `serve` configures them) over st on
// 127.0.0.1 and returns its base URL.
func serveForBench(b *testing.B, st *store.Store, packDir, token string) string {
	packs := NewPackCache(packDir, source.FromStore(st), nil)
	b.Cleanup(packs.Close)
	h, err := server.New(server.Config{InsecureNoAuth: true, APIToken: token, Events: nopEvents{}, Source: source.FromStore(st),
		Packs: func(ctx context.Context, f store.FolderID) (*server.FolderPack, error) {
			seq, commit, pack, idx, err := packs.Open(ctx, f)
			if err != nil || pack == nil {
				return nil, err
			}
			return &server.FolderPack{Seq: seq, Commit: commit, Pack: pack, Index: idx}, nil
		}})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	b.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

type nopEvents struct{}

func (nopEvents) Enqueue(context.Context, server.Event) (bool, error) { return false, nil }

// BenchmarkTransports20k is the measurement behind the choice of transport:
// the same 20,000-snapshot history written into a bare repository
//
//   - as the `import` capability would: a fast-import stream (each
//     snapshot's changed files inline, commit messages from
//     internal/history) piped into `git fast-import`;
//   - as this package does (`fetch`): the pack written by synthesis.run, plus
//     its index.
//
// It reports both times (CPU time for fast-import: it runs in its own
// process, the stream being made concurrently).
func BenchmarkTransports20k(b *testing.B) {
	const snapshots, files = 20000, 300
	testreq.Git(b)
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	newVault(st, testFolder, 1, files).grow(b, snapshots)
	src := source.FromStore(st)

	b.ResetTimer()
	var imp, pack time.Duration
	var impCPU time.Duration
	for range b.N {
		repo := filepath.Join(b.TempDir(), "fi.git")
		if out, err := exec.Command("git", "init", "-q", "--bare", repo).CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
		t := time.Now()
		cmd := exec.Command("git", "fast-import", "--quiet")
		cmd.Dir = repo
		in, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		if err := fastImportStream(src, in); err != nil {
			b.Fatal(err)
		}
		in.Close()
		if err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		imp = time.Since(t)
		impCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()

		packDir := b.TempDir()
		t = time.Now()
		pw, err := newPackWriter(packDir)
		if err != nil {
			b.Fatal(err)
		}
		s := &synthesis{src: src, folder: testFolder, pack: pw}
		if _, err := s.run(context.Background()); err != nil {
			b.Fatal(err)
		}
		if _, err := pw.finish(); err != nil {
			b.Fatal(err)
		}
		pack = time.Since(t)
	}
	b.StopTimer()
	b.Logf("fast-import: %v (git fast-import alone %v CPU); pack: %v", imp, impCPU, pack)
	b.ReportMetric(imp.Seconds(), "fast-import-s")
	b.ReportMetric(pack.Seconds(), "pack-s")
}

// fastImportStream writes the folder's history as a fast-import stream.
func fastImportStream(src source.Source, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	syn := history.New(history.Config{}, memory.NewStorage())
	var prev map[string]store.BlobID
	fmt.Fprintf(bw, "feature done\n")
	err := src.History(context.Background(), testFolder, 0, func(s *store.Snapshot) error {
		m := syn.Meta(s)
		fmt.Fprintf(bw, "commit refs/heads/main\nauthor %s\ncommitter %s\ndata %d\n%s\n", m.Author, m.Committer, len(m.Message), m.Message)
		cur := make(map[string]store.BlobID, len(s.Files))
		for _, f := range s.Files {
			cur[f.Path] = f.Blob
		}
		for p := range prev {
			if _, ok := cur[p]; !ok {
				fmt.Fprintf(bw, "D %s\n", strconv.Quote(p))
			}
		}
		for _, f := range s.Files {
			if id, ok := prev[f.Path]; ok && id == f.Blob {
				continue
			}
			data, err := src.Blob(context.Background(), f.Blob)
			if err != nil {
				return err
			}
			fmt.Fprintf(bw, "M 100644 inline %s\ndata %d\n", strconv.Quote(f.Path), len(data))
			bw.Write(data)
			bw.WriteByte('\n')
		}
		bw.WriteByte('\n')
		prev = cur
		return nil
	})
	if err != nil {
		return err
	}
	bw.WriteString("done\n")
	return bw.Flush()
}
