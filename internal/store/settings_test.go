package store

import (
	"bytes"
	"errors"
	"testing"
)

// The history config survives a reopen and is replaced by the next write;
// a store that never had one says so with ErrNotFound.
func TestHistoryConfigSetting(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.HistoryConfig(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("HistoryConfig of a new store: %v, want ErrNotFound", err)
	}
	if err := s.SetHistoryConfig([]byte(`{"author":{"name":"A"}}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.HistoryConfig()
	if err != nil || string(got) != `{"author":{"name":"A"}}` {
		t.Fatalf("after reopen: %q, %v", got, err)
	}
	if err := s.SetHistoryConfig([]byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.HistoryConfig(); err != nil || string(got) != `{}` {
		t.Fatalf("after replace: %q, %v", got, err)
	}
	if err := s.SetHistoryConfig(make([]byte, maxSetting+1)); err == nil {
		t.Fatal("an oversized config was accepted")
	}
}

// A config of up to 1 MiB is taken by an in-memory store too, whose
// values are limited to 64 KiB (a one-shot reader's replica holds one).
func TestHistoryConfigLargeInMemory(t *testing.T) {
	s := openMem(t)
	cfg := bytes.Repeat([]byte("x"), maxSetting)
	if err := s.SetHistoryConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if got, err := s.HistoryConfig(); err != nil || !bytes.Equal(got, cfg) {
		t.Fatalf("HistoryConfig = %d bytes, %v; want %d", len(got), err, len(cfg))
	}
}
