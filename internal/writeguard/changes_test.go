package writeguard

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/relaytest"
	"github.com/relay-git-sync/relay-git-sync/internal/source"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/writeback"
)

// A pushed commit that is not what it claims (no id, a pack that is not
// one, or one without the commit) refuses the push before anything is
// written or stored.
func TestWriteChangesRefusesBadCommits(t *testing.T) {
	srv := relaytest.NewServer(relaytest.Options{APIKey: "k"})
	defer srv.Close()
	folder := srv.NewFolder(srv.NewRelay())
	f := store.FolderID{Relay: folder.RelayID(), Folder: folder.ID()}
	rc, err := relay.NewClient(relay.ClientOptions{BaseURL: srv.URL(), APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	change := readapi.WriteChange{Path: "a.md", Kind: "markdown", Data: []byte("alpha\n")}
	id := strings.Repeat("ab", 20)
	for name, c := range map[string]readapi.PushCommit{
		"no id":      {ID: "", Pack: []byte("PACK")},
		"bad parent": {ID: id, Parent: "HEAD", Pack: []byte("PACK")},
		"not a pack": {ID: id, Pack: []byte("not a pack at all")},
		"empty pack": {ID: id},
		"zero id":    {ID: strings.Repeat("0", 40), Pack: []byte("PACK")},
	} {
		req := readapi.ChangesRequest{Changes: []readapi.WriteChange{change}, Commit: &c}
		_, err := WriteChanges(context.Background(), source.FromStore(st), rc, Record(nil, st), f, req)
		if !errors.Is(err, writeback.ErrRefused) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
	if n := len(srv.WrittenUpdates(folder.RelayID(), folder.ID())); n != 0 {
		t.Errorf("refused pushes wrote %d folder updates", n)
	}
	if _, ok := folder.Entry("/a.md"); ok {
		t.Error("a refused push created a.md")
	}
}
