//go:build !linux

package store

// releaseMapped is Linux-only (see mapped_linux.go).
func (s *Store) releaseMapped() {}
