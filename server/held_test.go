package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/readapi"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

var heldTestFolder = store.FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}

// heldStore is a store whose test folder had 20 files and then lost 15
// in snapshot 2, which is held.
func heldStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open("", store.Options{InMemory: true, HoldDeletions: store.DefaultHoldPolicy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var files []store.File
	for i := 0; i < 20; i++ {
		data := []byte(fmt.Sprintf("note %d\n", i))
		id, err := st.PutBlob(data, store.BlobID{})
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, store.File{Path: fmt.Sprintf("n%02d.md", i), Blob: id, Size: int64(len(data)), DocID: fmt.Sprintf("d%d", i), Kind: "markdown"})
	}
	for _, tree := range [][]store.File{files, files[15:]} {
		if _, err := st.AddSnapshot(&store.Snapshot{Folder: heldTestFolder, Time: time.Unix(1767225600, 0), Files: tree}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func heldEnv(t *testing.T) (*testEnv, *store.Store) {
	st := heldStore(t)
	return newEnv(t, func(c *Config) { c.Held = st }), st
}

func TestHeldRoutes(t *testing.T) {
	env, st := heldEnv(t)
	base := "/api/v1/folders/" + heldTestFolder.Relay + "/" + heldTestFolder.Folder + "/held/"
	if w := env.do("GET", "/api/v1/held", nil, nil); w.Code != 401 {
		t.Fatalf("without a token: %d", w.Code)
	}
	if w := env.do("POST", base+"release", nil, nil); w.Code != 401 {
		t.Fatalf("release without a token: %d", w.Code)
	}
	if h, _ := st.Held(heldTestFolder); h == nil {
		t.Fatal("release without a token lifted the hold")
	}
	if m := metricValue(t, env, "relay_git_sync_held_folders"); m != "1" {
		t.Errorf("relay_git_sync_held_folders = %q, want 1", m)
	}
	expectJSON(t, env.do("GET", "/health", nil, nil), 200, `{"held_folders":1,"status":"healthy"}`)
	w := env.do("GET", "/api/v1/held", nil, bearer(testToken))
	var list readapi.HeldList
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list.Held) != 1 {
		t.Fatalf("GET /api/v1/held: %d %s", w.Code, w.Body)
	}
	if h := list.Held[0]; h.Relay != heldTestFolder.Relay || h.HeldFrom != 2 || h.ComparedWith != 1 || h.Files != 20 || h.Deleted != 15 {
		t.Errorf("held = %+v", h)
	}

	w = env.do("POST", base+"drop", nil, bearer(testToken))
	var act readapi.HeldAction
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &act) != nil || act.Action != "dropped" || act.HeldFrom != 2 || act.DroppedThrough != 2 {
		t.Fatalf("drop: %d %s", w.Code, w.Body)
	}
	if d, _ := st.Dropped(heldTestFolder); len(d) != 1 {
		t.Errorf("dropped = %+v", d)
	}
	w = env.do("POST", base+"release", nil, bearer(testToken))
	if w.Code != 404 || !strings.Contains(w.Body.String(), "no held snapshots") {
		t.Fatalf("release of a folder not held: %d %s", w.Code, w.Body)
	}
	if w := env.do("GET", "/api/v1/held", nil, bearer(testToken)); w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"held":[]}` {
		t.Fatalf("empty list: %d %s", w.Code, w.Body)
	}
	if m := metricValue(t, env, "relay_git_sync_held_folders"); m != "0" {
		t.Errorf("relay_git_sync_held_folders = %q after the drop, want 0", m)
	}
	expectJSON(t, env.do("GET", "/health", nil, nil), 200, `{"status":"healthy"}`)
	if w := env.do("POST", "/api/v1/folders/x/y/held/drop", nil, bearer(testToken)); w.Code != 400 {
		t.Errorf("bad ids: %d", w.Code)
	}
	// Without Config.Held the routes are not there.
	if w := newEnv(t, nil).do("GET", "/api/v1/held", nil, bearer(testToken)); w.Code != 404 {
		t.Errorf("without Held: %d", w.Code)
	}
}

// metricValue scrapes /metrics for one unlabelled metric's value.
func metricValue(t *testing.T, env *testEnv, name string) string {
	t.Helper()
	for _, line := range strings.Split(env.do("GET", "/metrics", nil, nil).Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}
