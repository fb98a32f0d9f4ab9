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
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
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

// BenchmarkFetchDataDir20k times `git fetch` of 100 new snapshots from a
// data dir (relay::DATADIR/<relay>/<folder>, the history of
// BenchmarkClone20k) against `git fetch` of the same commits from a bare
// repository (the reference of BenchmarkClone20k, repacked), 9 times each
// (per b.N), alternating, every run in a fresh copy (cp -a) of a
// repository cloned before the snapshots were added. Then it runs the
// helper's side of the same fetch in this process (Run, fed the commands
// git sends) 9 times, so that -cpuprofile profiles git-remote-relay (its
// samples are labelled phase=helper: pprof -tagfocus phase=helper):
//
//	go test -tags nomsgpack -run '^$' -bench FetchDataDir20k -benchtime 1x -timeout 30m -cpuprofile cpu.out ./remotehelper
//
// It reports median wall times (dir-fetch-s, git-fetch-s; helper-s and
// helper-cpu-s for the helper in this process, its git commands not
// counted), the ratios dir/git of the medians (dir-fetch-ratio: target
// ≤ 1.5), of the fastest runs, and of the median CPU times of git and its
// children (the helper included).
func BenchmarkFetchDataDir20k(b *testing.B) {
	const snapshots, files, more = 20000, 300, 100
	const runs = 9 // of each, per b.N
	g := newGitEnv(b)
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
	g.git(work, "clone", "-q", "--bare", dirURL, "ref.git") // also keeps the pack in the data dir
	ref := filepath.Join(work, "ref.git")
	t0 = time.Now()
	g.git(ref, "repack", "-adfq")
	b.Logf("repack -adf of the reference: %v", time.Since(t0).Round(time.Millisecond))
	dirBase, gitBase := filepath.Join(work, "dir-base"), filepath.Join(work, "git-base")
	g.git(work, "clone", "-q", dirURL, dirBase)
	g.git(work, "clone", "-q", "--no-local", ref, gitBase)

	st, err = store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	v.st = st
	v.grow(b, more)
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	g.git(ref, "fetch", "-q", dirURL, "+refs/heads/main:refs/heads/main")
	want := revParse(g, ref, "main")

	fresh := func(base, name string) string {
		d := filepath.Join(work, name)
		if err := os.RemoveAll(d); err != nil {
			b.Fatal(err)
		}
		if out, err := exec.Command("cp", "-a", base, d).CombinedOutput(); err != nil {
			b.Fatalf("cp -a %s: %v %s", base, err, out)
		}
		return d
	}
	var dirWall, gitWall, dirCPU, gitCPU, helper, helperCPU []time.Duration
	b.ResetTimer()
	for i := range b.N * runs {
		b.StopTimer()
		d, gd := fresh(dirBase, "dir"), fresh(gitBase, "git")
		b.StartTimer()
		timed := func(repo string, wall, cpu *[]time.Duration) {
			w, c := g.timed(repo, "fetch", "-q")
			*wall, *cpu = append(*wall, w), append(*cpu, c)
			if got := revParse(g, repo, "origin/main"); got != want {
				b.Fatalf("after fetch in %s: origin/main is %s, want %s", repo, got, want)
			}
		}
		if i%2 == 0 {
			timed(d, &dirWall, &dirCPU)
			timed(gd, &gitWall, &gitCPU)
		} else {
			timed(gd, &gitWall, &gitCPU)
			timed(d, &dirWall, &dirCPU)
		}
	}
	defer debug.SetGCPercent(debug.SetGCPercent(300)) // as cmd/git-remote-relay does
	for range b.N * runs {
		b.StopTimer()
		d := fresh(dirBase, "dir")
		b.StartTimer()
		c := processCPU()
		helper = append(helper, helperFetch(b, g, d, dir+"/"+testFolder.String(), want))
		helperCPU = append(helperCPU, processCPU()-c)
	}
	b.StopTimer()
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	b.Logf("load %s; dir fetches %v (CPU %v); git fetches %v (CPU %v); helper in process %v (CPU %v)", loadavg(), dirWall, dirCPU, gitWall, gitCPU, helper, helperCPU)
	b.ReportMetric(med(dirWall).Seconds(), "dir-fetch-s")
	b.ReportMetric(med(gitWall).Seconds(), "git-fetch-s")
	b.ReportMetric(med(helper).Seconds(), "helper-s")
	b.ReportMetric(med(helperCPU).Seconds(), "helper-cpu-s")
	b.ReportMetric(med(dirWall).Seconds()/med(gitWall).Seconds(), "dir-fetch-ratio")
	b.ReportMetric(slices.Min(dirWall).Seconds()/slices.Min(gitWall).Seconds(), "dir-fetch-best-ratio")
	b.ReportMetric(med(dirCPU).Seconds()/med(gitCPU).Seconds(), "dir-fetch-cpu-ratio")
}

// helperFetch runs the helper in this process as `git fetch` in repo
// would (capabilities, options, list, fetch of the listed tip) and returns
// how long Run took. The pack it writes stays in repo; git's side (ref
// updates, the connectivity walk) is not done.
func helperFetch(b *testing.B, g *gitEnv, repo, url, want string) time.Duration {
	env := append(slices.Clone(g.env), "GIT_DIR=.git")
	getenv := func(k string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], k+"="); ok {
				return v
			}
		}
		return ""
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr strings.Builder
	done := make(chan error, 1)
	start := time.Now()
	// Labelled (goroutines inherit it): pprof -tagfocus phase=helper
	// shows the helper alone.
	go pprof.Do(context.Background(), pprof.Labels("phase", "helper"), func(ctx context.Context) {
		err := Run(ctx, Config{Remote: "origin", URL: url, Getenv: getenv, Environ: env, Dir: repo,
			Stdin: inR, Stdout: outW, Stderr: &stderr})
		outW.Close()
		done <- err
	})
	out := bufio.NewReader(outR)
	// readBlock reads the helper's answer up to its blank line.
	readBlock := func() []string {
		var lines []string
		for {
			l, err := out.ReadString('\n')
			if err != nil {
				b.Fatalf("reading the helper's answer: %v (so far %q; stderr %s)", err, lines, stderr.String())
			}
			if l == "\n" {
				return lines
			}
			lines = append(lines, strings.TrimSuffix(l, "\n"))
		}
	}
	option := func(o string) {
		fmt.Fprintf(inW, "option %s\n", o)
		if _, err := out.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
	}
	// What git 2.39's `git fetch -q` sends (GIT_TRANSPORT_HELPER_DEBUG=1);
	// no check-connectivity: git offers it to a clone only.
	fmt.Fprint(inW, "capabilities\n")
	readBlock()
	option("progress false")
	option("verbosity 0")
	fmt.Fprint(inW, "list\n")
	listed := readBlock()
	if len(listed) == 0 || !strings.HasPrefix(listed[0], want+" ") {
		b.Fatalf("helper listed %q, want %s", listed, want)
	}
	option("followtags true")
	fmt.Fprintf(inW, "fetch %s %s\n\n", want, Branch)
	readBlock()
	inW.Close()
	io.Copy(io.Discard, out)
	if err := <-done; err != nil {
		b.Fatalf("helper: %v\n%s", err, stderr.String())
	}
	return time.Since(start)
}

func loadavg() string {
	l, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(l))[:3], " ")
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
