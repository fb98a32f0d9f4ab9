package store

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Settings: small values that belong to the data dir rather than to one
// folder, so that every process reading the store agrees on them.
//
// The history config (the identity and the Relay user → identity map that
// decide every synthesized commit id, see internal/history) is one: `serve`
// and `sync` record it, and the remote helper and the mirror read it from
// here (or from the server's read API), never from their own environment.
// The store keeps it as opaque bytes (JSON written by the caller); it does
// not import internal/history.
const (
	prefixSetting = 'h'

	settingV1 = 1

	// maxSetting bounds a setting's size (an authors map of a few thousand
	// users is well under it).
	maxSetting = 1 << 20
)

func historyConfigKey() []byte { return []byte{prefixSetting} }

// HistoryConfig returns the history config recorded by SetHistoryConfig, or
// an error wrapping ErrNotFound when none was ever recorded.
func (s *Store) HistoryConfig() ([]byte, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		v, err := getValue(txn, historyConfigKey())
		if err != nil {
			return err
		}
		if len(v) == 0 || v[0] != settingV1 {
			return fmt.Errorf("history config record: %w", errCorrupt)
		}
		out = v[1:]
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading history config: %w", err)
	}
	return out, nil
}

// SetHistoryConfig records the history config (at most 1 MiB), replacing
// any previous one. Callers should compare with HistoryConfig first and tell
// the user when it changes: that changes the id of every synthesized commit.
func (s *Store) SetHistoryConfig(cfg []byte) error {
	if len(cfg) > maxSetting {
		return fmt.Errorf("store: history config of %d bytes is over the %d-byte limit", len(cfg), maxSetting)
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		// setValue: over Badger's value limit (64 KiB in memory) the
		// config is split in parts, as HistoryConfig's getValue expects.
		return s.setValue(txn, historyConfigKey(), append([]byte{settingV1}, cfg...))
	})
	if err != nil {
		return fmt.Errorf("store: recording history config: %w", err)
	}
	return nil
}
