package store_test

import (
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/store/storetest"
)

// TestConformance runs the Backend conformance suite on Badger, in memory
// and in a data dir (internal/natsstore runs it on JetStream).
func TestConformance(t *testing.T) {
	for _, mode := range []string{"memory", "disk"} {
		t.Run(mode, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, hold store.HoldPolicy) store.Backend {
				dir := ""
				if mode == "disk" {
					dir = t.TempDir()
				}
				s, err := store.Open(dir, store.Options{InMemory: mode == "memory", HoldDeletions: hold})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := s.Close(); err != nil {
						t.Errorf("closing the store: %v", err)
					}
				})
				return s
			})
		})
	}
}
