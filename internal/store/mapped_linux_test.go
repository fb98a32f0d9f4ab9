package store

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFile returns the process's resident file-backed pages (RssFile).
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// Streaming a large blob in and out does not leave the value log's pages
// resident in the process (Badger maps it; see releaseMapped).
func TestStreamingReleasesValueLogPages(t *testing.T) {
	s := openDisk(t, t.TempDir(), Options{SyncWrites: true})
	defer s.Close()
	const n = 64 << 20
	data := randomBlob(n)
	before := rssFile(t)
	id, _, err := s.PutBlobFrom(bytes.NewReader(data), int64(n), BlobID{})
	if err != nil {
		t.Fatal(err)
	}
	written := rssFile(t) - before
	rc, _, err := s.OpenBlob(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	read := rssFile(t) - before
	t.Logf("file-backed resident growth: %.1f MiB after writing %d MiB, %.1f MiB after reading it", float64(written)/(1<<20), n>>20, float64(read)/(1<<20))
	if written > n/4 || read > n/4 {
		t.Errorf("the value log stays resident: +%.1f MiB after writing %d MiB, +%.1f MiB after reading it, want under %d", float64(written)/(1<<20), n>>20, float64(read)/(1<<20), n/4>>20)
	}
}
