// Command reconcile measures the memory and time of a full reconcile of a
// large folder (issue 16: "peak RSS for a folder of 10,000 notes during a
// full reconcile"). It starts the fake Relay Server (internal/relaytest) in
// this process with one shared folder of -notes markdown notes of 1–4 KB
// (each typed in two edits, so its Yjs state has some history), -canvases
// canvases and -files binary attachments, then runs the real binary as a
// subprocess on a new data dir:
//
//   - sync (first): `relay-git-sync sync` of the folder into the empty data
//     dir: every document fetched, decoded, stored, one snapshot recorded;
//   - sync (unchanged): the same command again: every document fetched
//     and compared with what is stored (a reconcile without the pacing),
//     nothing recorded;
//   - serve reconcile: `relay-git-sync serve` over that data dir, which
//     reconciles every folder at start (paced at its default 50 documents
//     per second), until its log says "reconcile done".
//
// For each it prints the wall and CPU time and the process's peak
// resident set (the rusage of the exited sync; VmHWM in /proc/PID/status
// for serve), with the largest anonymous (Go heap and runtime) and
// file-backed (the binary, Badger's memory-mapped tables) parts sampled
// every 5 ms.
// Linux only. Run from the module root:
//
//	go run -tags nomsgpack ./bench/reconcile
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/relay-git-sync/relay-git-sync/bench/internal/benchproc"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
)

var (
	binFlag  = flag.String("bin", "", "relay-git-sync binary (default: build it with go build -tags nomsgpack)")
	notes    = flag.Int("notes", 10000, "markdown notes in the folder")
	canvases = flag.Int("canvases", 50, "canvases in the folder")
	files    = flag.Int("files", 200, "binary attachments in the folder (4–200 KB each)")
	serve    = flag.Bool("serve", true, "also measure serve's reconcile at start (paced: about notes/50 seconds)")
	keep     = flag.Bool("keep", false, "keep the data dir and the logs")
	timeout  = flag.Duration("timeout", 30*time.Minute, "give up after this long")
)

func main() {
	log.SetFlags(0)
	flag.Parse()
	if err := run(); err != nil {
		log.Fatal("reconcile: ", err)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	tmp, cleanup, err := benchproc.Workdir("reconcile", *keep)
	if err != nil {
		return err
	}
	defer cleanup()
	bin, err := benchproc.Binary(*binFlag, tmp)
	if err != nil {
		return err
	}

	const relayKey = "bench-relay-key"
	srv := relaytest.NewServer(relaytest.Options{APIKey: relayKey})
	defer srv.Close()
	relayID := srv.NewRelay()
	folder := srv.NewFolder(relayID)
	t0 := time.Now()
	size, err := fill(folder)
	if err != nil {
		return err
	}
	log.Printf("folder of %d notes, %d canvases, %d attachments (%.1f MB of content) made in %v",
		*notes, *canvases, *files, float64(size)/1e6, time.Since(t0).Round(time.Millisecond))

	dataDir := filepath.Join(tmp, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	env := append(os.Environ(), "RELAY_GIT_DATA_DIR="+dataDir, "RELAY_SERVER_URL="+srv.URL(),
		"RELAY_SERVER_API_KEY="+relayKey, "WEBHOOK_SECRET=bench-webhook-secret", "RELAY_GIT_API_TOKEN=bench-api-token")
	syncArgs := []string{"sync", "--relay-id", relayID, "--folder-id", folder.ID()}

	fmt.Printf("load before: %s\n", loadavg())
	out, err := runMeasured(ctx, bin, syncArgs, env, "sync (first)")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "snapshot 1 ") {
		return fmt.Errorf("the first sync recorded no snapshot:\n%s", out)
	}
	out, err = runMeasured(ctx, bin, syncArgs, env, "sync (unchanged)")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "no changes") {
		return fmt.Errorf("the second sync recorded something:\n%s", out)
	}
	if *serve {
		if err := serveReconcile(ctx, bin, env, filepath.Join(tmp, "serve.log")); err != nil {
			return err
		}
	}
	fmt.Printf("load after: %s\n", loadavg())
	return nil
}

// fill adds the folder's content and returns its size in bytes.
func fill(f *relaytest.Folder) (int64, error) {
	rng := rand.New(rand.NewPCG(16, 10000))
	var total int64
	for i := range *notes {
		path := fmt.Sprintf("/notes/%03d/note-%05d.md", i/100, i)
		text := markdown(rng, i, 1000+rng.IntN(3000))
		// Typed in two goes, the second in the middle of the first (as
		// real editing leaves a state of several items): the first and
		// last quarters, then the middle half.
		q := len(text) / 4
		if _, err := f.AddMarkdown(path, text[:q]+text[3*q:]); err != nil {
			return 0, err
		}
		if err := f.EditMarkdown(path, text); err != nil {
			return 0, err
		}
		total += int64(len(text))
	}
	for i := range *canvases {
		var nodes, edges []map[string]any
		texts := map[string]string{}
		for n := range 10 + rng.IntN(30) {
			id := fmt.Sprintf("node%04d", n)
			nodes = append(nodes, map[string]any{"id": id, "type": "text", "x": float64(n * 300), "y": float64(rng.IntN(2000)), "width": 250.0, "height": 120.0})
			texts[id] = markdown(rng, n, 50+rng.IntN(300))
			if n > 0 {
				edges = append(edges, map[string]any{"id": fmt.Sprintf("edge%04d", n), "fromNode": fmt.Sprintf("node%04d", n-1), "fromSide": "right", "toNode": id, "toSide": "left"})
			}
		}
		if _, err := f.AddCanvas(fmt.Sprintf("/canvases/board-%03d.canvas", i), nodes, edges, texts); err != nil {
			return 0, err
		}
	}
	for i := range *files {
		size := 4000 + rng.IntN(196000)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if _, err := f.AddFile(fmt.Sprintf("/attachments/image-%04d.png", i), "image", "image/png", data); err != nil {
			return 0, err
		}
		total += int64(size)
	}
	return total, nil
}

var words = strings.Fields(`the a of to and in is it that for on with as was at by this be from
or an are not have but they which one you were all we her she there been has when who will more no
if out so said what up its about into than them can only other new some could time these two may
then do first any my now such like our over man me even most made after also did many before must
through back years where much your way well down should because each just those people how too
little state good very make world still own see men work long get here between both life being under
never day same another know while last might us great old year off come since against go came right
used take three`)

// markdown returns about n bytes of note text: a title, paragraphs,
// lists, links, the odd code block.
func markdown(rng *rand.Rand, i, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Note %d\n\n", i)
	for b.Len() < n {
		switch rng.IntN(8) {
		case 0:
			fmt.Fprintf(&b, "## %s %s\n\n", words[rng.IntN(len(words))], words[rng.IntN(len(words))])
		case 1:
			for range 2 + rng.IntN(4) {
				fmt.Fprintf(&b, "- %s %s [[note-%05d]]\n", words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(10000))
			}
			b.WriteString("\n")
		case 2:
			b.WriteString("```go\nfunc main() {\n\tfmt.Println(\"hello\")\n}\n```\n\n")
		default:
			for range 20 + rng.IntN(60) {
				b.WriteString(words[rng.IntN(len(words))])
				b.WriteByte(' ')
			}
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

// runMeasured runs bin with args to completion and prints its wall time
// and peak resident set; it returns its stdout.
func runMeasured(ctx context.Context, bin string, args, env []string, phase string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return "", err
	}
	rss := sampleRSS(cmd.Process.Pid)
	err := cmd.Wait()
	wall := time.Since(start)
	split := rss()
	if err != nil {
		return "", fmt.Errorf("%s: %s: %v\n%s%s", phase, strings.Join(args, " "), err, out.String(), errb.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	report(phase, wall, cpu, ru.Maxrss<<10, split)
	return out.String(), nil
}

func report(phase string, wall, cpu time.Duration, peak int64, split [2]int64) {
	fmt.Printf("%-34s %6.1fs wall %6.1fs CPU  peak RSS %6.1f MB (anon %6.1f, files %5.1f)  load %s\n", phase, wall.Seconds(), cpu.Seconds(),
		float64(peak)/1e6, float64(split[0])/1e6, float64(split[1])/1e6, loadavg())
}

// sampleRSS reads the process's anonymous and file-backed resident sets
// (RssAnon, RssFile: the Go heap and runtime, and the pages of the binary
// and of Badger's memory-mapped tables) every 5 ms until the returned
// function is called, which returns the largest of each. Only VmHWM is
// exact; these show what the peak is made of.
func sampleRSS(pid int) func() [2]int64 {
	stop := make(chan struct{})
	done := make(chan [2]int64)
	go func() {
		var peak [2]int64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if st, err := benchproc.Status(pid); err == nil {
				peak[0], peak[1] = max(peak[0], st["RssAnon"]), max(peak[1], st["RssFile"])
			}
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() [2]int64 { close(stop); return <-done }
}

// serveReconcile runs serve over the data dir until its reconcile at start
// is done, and reports its peak resident set by then.
func serveReconcile(ctx context.Context, bin string, env []string, logPath string) error {
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--host", "127.0.0.1", "--port", "0")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	rss := sampleRSS(cmd.Process.Pid)
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	for {
		b, _ := os.ReadFile(logPath)
		if m := reconcileDone.FindSubmatch(b); m != nil {
			wall := time.Since(start)
			peak, err := benchproc.StatusField(cmd.Process.Pid, "VmHWM")
			if err != nil {
				return err
			}
			cpu, err := benchproc.CPU(cmd.Process.Pid)
			if err != nil {
				return err
			}
			report("serve reconcile ("+string(m[1])+" docs, paced)", wall, cpu, peak, rss())
			return nil
		}
		if bytes.Contains(b, []byte("level=ERROR")) {
			return fmt.Errorf("serve logged an error:\n%s", b)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("serve's reconcile did not finish: %w\n%s", ctx.Err(), b)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var reconcileDone = regexp.MustCompile(`msg="reconcile done".* documents=(\d+)`)

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
