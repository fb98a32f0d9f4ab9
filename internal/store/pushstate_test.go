package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPushState(t *testing.T) {
	s, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "f47ac10b-58cc-4372-a567-0e02b2c3d479"}
	g := FolderID{Relay: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", Folder: "a47ac10b-58cc-4372-a567-0e02b2c3d479"}
	if _, err := s.PushState(f, "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing state: %v", err)
	}
	if owned, err := s.PushOwned(f, "c1"); err != nil || owned != nil {
		t.Errorf("missing owned: %v %v", owned, err)
	}
	now := time.Date(2026, 5, 6, 7, 8, 9, 123, time.UTC)
	ps := &PushState{URL: "git@example.com:x.git", Branch: "main", Prefix: "docs", Seq: 42, PushedAt: now, Linear: true,
		Attempts: 3, LastError: "push rejected: x", ErrorAt: now.Add(time.Second), NextAttempt: now.Add(time.Minute)}
	ps.Commit[0], ps.Commit[19] = 0xab, 0xcd
	if err := s.SetPushState(f, "c1", ps, []string{"a.md", "b/c.md"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.PushState(f, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(*got) != fmt.Sprint(*ps) || !got.PushedAt.Equal(now) {
		t.Errorf("state %+v, want %+v", got, ps)
	}
	// nil owned leaves them; an empty slice clears them.
	ps.Seq = 43
	if err := s.SetPushState(f, "c1", ps, nil); err != nil {
		t.Fatal(err)
	}
	if owned, _ := s.PushOwned(f, "c1"); !slices.Equal(owned, []string{"a.md", "b/c.md"}) {
		t.Errorf("owned after a nil update: %v", owned)
	}
	// Many owned paths (a big value, split in parts).
	var many []string
	for i := range 60000 {
		many = append(many, fmt.Sprintf("dir %03d/some fairly long note name %06d.md", i%500, i))
	}
	slices.Sort(many)
	if err := s.SetPushState(f, "c1", ps, many); err != nil {
		t.Fatal(err)
	}
	if owned, _ := s.PushOwned(f, "c1"); !slices.Equal(owned, many) {
		t.Errorf("%d owned paths read back, want %d", len(owned), len(many))
	}
	if err := s.SetPushState(f, "c1", ps, []string{}); err != nil {
		t.Fatal(err)
	}
	if owned, _ := s.PushOwned(f, "c1"); len(owned) != 0 {
		t.Errorf("owned after clearing: %v", owned)
	}
	if err := s.SetPushState(f, "c1", ps, []string{"b", "a"}); err == nil || !strings.Contains(err.Error(), "sorted") {
		t.Errorf("unsorted owned accepted: %v", err)
	}
	if err := s.SetPushState(f, "", ps, nil); err == nil {
		t.Error("empty connector id accepted")
	}
	// Listing, sorted by folder then connector.
	s.SetPushState(g, "zz", &PushState{Branch: "b"}, nil)
	s.SetPushState(f, "a0", &PushState{Branch: "a"}, nil)
	all, err := s.PushStates()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range all {
		keys = append(keys, c.Folder.Folder[:2]+"/"+c.Conn)
	}
	if strings.Join(keys, " ") != "a4/zz f4/a0 f4/c1" {
		t.Errorf("PushStates order: %v", keys)
	}
	if all[2].State.Seq != 43 || all[2].State.Prefix != "docs" {
		t.Errorf("listed state %+v", all[2].State)
	}
}
