package natsstore

import (
	"testing"

	"github.com/relay-git-sync/relay-git-sync/internal/natstest"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/internal/store/storetest"
)

// The store's conformance suite, on a fresh single-node cluster per case:
// what holds of Badger holds of JetStream.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, hold store.HoldPolicy) store.Backend {
		return open(t, natstest.Start(t).URL(), Options{HoldDeletions: hold})
	})
}
