package writeguard

import (
	"context"
	"crypto/sha1"
	"errors"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
)

// A push is checked against what Relay has now: paths edited, created or
// deleted in Relay since the snapshot are named; paths as in the snapshot,
// or already as the push wants them (an earlier attempt), pass.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	srv := relaytest.NewServer(relaytest.Options{APIKey: "k"})
	defer srv.Close()
	folder := srv.NewFolder(srv.NewRelay())
	f := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}
	rc, err := relay.NewClient(relay.ClientOptions{BaseURL: srv.URL(), APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	png := []byte("\x89PNG\r\n\x1a\nimage")
	blobs := map[store.BlobID][]byte{}
	base := &store.Snapshot{Folder: f, Seq: 7}
	add := func(path, kind, content string) {
		t.Helper()
		var id string
		var err error
		if kind == "file" {
			id, err = folder.AddFile("/"+path, "image", "image/png", []byte(content))
		} else {
			id, err = folder.AddMarkdown("/"+path, content)
		}
		if err != nil {
			t.Fatal(err)
		}
		b := store.BlobID(sha1.Sum([]byte(content)))
		blobs[b] = []byte(content)
		base.Files = append(base.Files, store.File{Path: path, Blob: b, DocID: id, Kind: kind})
	}
	add("a.md", "markdown", "alpha 😀\n")
	add("b.md", "markdown", "beta\n")
	add("c.md", "markdown", "gamma\n")
	add("d.md", "markdown", "delta\n")
	add("img.png", "file", string(png))
	blob := func(_ context.Context, id store.BlobID) ([]byte, error) { return blobs[id], nil }
	check := func(changes ...writeback.Change) error {
		return Check(ctx, rc, f, base, blob, changes)
	}
	md := func(path, text string) writeback.Change {
		return writeback.Change{Path: path, Kind: "markdown", Data: []byte(text)}
	}

	if err := check(md("a.md", "alpha 😀 edited\n"), writeback.Change{Path: "b.md", Delete: true},
		writeback.Change{Path: "moved/c.md", From: "c.md", Kind: "markdown", Data: []byte("gamma\n")},
		md("new.md", "new\n"), writeback.Change{Path: "img.png", Kind: "file", Data: []byte("other")}); err != nil {
		t.Fatalf("nothing changed in Relay, yet: %v", err)
	}

	// Edits, creations and deletions made in Relay since snapshot 7.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(folder.EditMarkdown("/a.md", "alpha 😀, typed in Obsidian\n"))
	must(folder.Delete("/d.md"))
	_, err = folder.AddMarkdown("/new.md", "made in Obsidian\n")
	must(err)
	must(folder.UpdateFile("/img.png", []byte("\x89PNG\r\n\x1a\nredrawn")))
	must(folder.EditMarkdown("/c.md", "gamma, edited\n"))
	err = check(md("a.md", "alpha 😀 edited\n"), md("d.md", "delta, pushed\n"), md("new.md", "new\n"),
		writeback.Change{Path: "img.png", Kind: "file", Data: []byte("other")},
		writeback.Change{Path: "moved/c.md", From: "c.md", Kind: "markdown", Data: []byte("gamma\n")})
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("got %v, want ErrChanged", err)
	}
	for _, want := range []string{"a.md (edited in Relay)", "d.md (deleted or renamed in Relay)", "new.md (created in Relay)", "img.png (edited in Relay)", "c.md (edited in Relay)", "snapshot 7"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}

	// What an earlier attempt wrote passes: the text, the deletion, the
	// moved entry.
	must(folder.EditMarkdown("/a.md", "alpha 😀 edited\n"))
	must(folder.Delete("/b.md"))
	must(folder.Rename("/c.md", "/moved/c.md"))
	if err := check(md("a.md", "alpha 😀 edited\n"), writeback.Change{Path: "b.md", Delete: true},
		writeback.Change{Path: "moved/c.md", From: "c.md", Kind: "markdown", Data: []byte("gamma, edited\n")}); err != nil {
		t.Errorf("changes that landed before: %v", err)
	}
	// A deletion of a note edited in Relay would lose the edit.
	if err := check(writeback.Change{Path: "a.md", Delete: true}); !errors.Is(err, ErrChanged) {
		t.Errorf("deleting a note edited in Relay: %v", err)
	}
}
