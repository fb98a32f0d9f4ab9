package yjs

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
)

// Writing back to a peer that holds a document (the Relay Server): read its
// state, edit locally under a fresh client id, send only what it lacks.
//
//	d := yjs.NewDoc()
//	err := d.ApplyUpdate(serverState)     // GET as-update
//	sv := d.EncodeStateVector()           // what the server has
//	d.SetRandomClientID()
//	err = d.GetText("contents").ApplyDiff(newText)
//	update, err := d.EncodeLocalChanges(sv) // POST update; empty update: nothing changed
//
// A Doc is not safe for concurrent use.

// EncodeStateVector encodes the document's state vector in the yjs v1
// format, as Y.encodeStateVector does: the number of clients, then per
// client (highest id first) its id and the next clock the document expects.
// Pending structs do not count, as in yjs.
func (d *Doc) EncodeStateVector() []byte {
	w := &writer{}
	clients := d.store.sortedClients()
	w.varUint(uint64(len(clients)))
	for _, c := range clients {
		w.varUint(c)
		w.varUint(d.store.state(c))
	}
	return w.buf
}

// DecodeStateVector decodes a v1 state vector (Y.encodeStateVector) into
// the next expected clock per client.
func DecodeStateVector(sv []byte) (map[uint64]uint64, error) {
	r := &reader{buf: sv}
	n, err := r.count(2)
	if err != nil {
		return nil, fmt.Errorf("yjs: reading state vector: %w", err)
	}
	out := make(map[uint64]uint64, n)
	for range n {
		client, err := r.varUint()
		if err != nil {
			return nil, fmt.Errorf("yjs: reading state vector: %w", err)
		}
		clock, err := r.varUint()
		if err != nil {
			return nil, fmt.Errorf("yjs: reading state vector: %w", err)
		}
		out[client] = clock
	}
	if r.remaining() != 0 {
		return nil, fmt.Errorf("yjs: state vector has %d bytes after its %d entries", r.remaining(), n)
	}
	return out, nil
}

// EncodeDiff encodes what a peer with state vector sv (v1, as
// EncodeStateVector or Y.encodeStateVector give it) lacks, as
// Y.encodeStateAsUpdate(doc, sv) does: per client the structs from the
// peer's clock on (the first one cut at that clock) and the document's
// whole delete set. A nil or empty sv gives the whole state.
//
// The delete set grows with the document's history; EncodeLocalChanges
// sends only the deletions of local edits.
func (d *Doc) EncodeDiff(sv []byte) ([]byte, error) {
	w, err := d.writeMissingStructs(sv)
	if err != nil {
		return nil, err
	}
	writeStoreDeleteSet(w, d.store, d.store.sortedClients())
	return w.buf, nil
}

// EncodeLocalChanges encodes the structs a peer with state vector sv
// lacks (as EncodeDiff) and only the deletions made by this Doc's own
// edits (Delete, DeleteKey, Set and SetType overwriting a key, ApplyDiff,
// and the deletions they cause). It is the update yjs would send for the
// local edits, so its size follows the change, not the document's history.
//
// Use it when the peer already holds every deletion this Doc received: the
// peer the Doc's state was read from, or one that has seen that state. A
// peer that has not must get EncodeDiff.
//
// An update with nothing in it is the two bytes {0, 0}: IsEmptyUpdate.
func (d *Doc) EncodeLocalChanges(sv []byte) ([]byte, error) {
	w, err := d.writeMissingStructs(sv)
	if err != nil {
		return nil, err
	}
	writeDeleteSet(w, d.localDeletes)
	return w.buf, nil
}

// writeMissingStructs writes the struct section of an update holding what
// a peer with state vector sv lacks. A port of yjs's writeClientsStructs.
func (d *Doc) writeMissingStructs(sv []byte) (*writer, error) {
	remote := map[uint64]uint64{}
	if len(sv) > 0 {
		var err error
		if remote, err = DecodeStateVector(sv); err != nil {
			return nil, err
		}
	}
	var clients []uint64
	for _, c := range d.store.sortedClients() {
		if d.store.state(c) > remote[c] {
			clients = append(clients, c)
		}
	}
	w := &writer{}
	w.varUint(uint64(len(clients)))
	for _, c := range clients {
		structs := d.store.structs(c)
		clock := max(remote[c], structs[0].id.Clock)
		i := d.store.findIndex(c, clock)
		w.varUint(uint64(len(structs) - i))
		w.varUint(c)
		w.varUint(clock)
		if err := writeStruct(w, structs[i], clock-structs[i].id.Clock); err != nil {
			return nil, err
		}
		for _, it := range structs[i+1:] {
			if err := writeStruct(w, it, 0); err != nil {
				return nil, err
			}
		}
	}
	return w, nil
}

// writeDeleteSet writes ds as yjs's writeDeleteSet does: clients highest
// first, each client's ranges sorted and merged.
func writeDeleteSet(w *writer, ds deleteSet) {
	clients := make([]uint64, 0, len(ds))
	for c, rs := range ds {
		if len(rs) > 0 {
			clients = append(clients, c)
		}
	}
	slices.SortFunc(clients, func(a, b uint64) int { return cmp.Compare(b, a) })
	w.varUint(uint64(len(clients)))
	for _, c := range clients {
		rs := mergeRanges(ds[c])
		w.varUint(c)
		w.varUint(uint64(len(rs)))
		for _, r := range rs {
			w.varUint(r.clock)
			w.varUint(r.len)
		}
	}
}

// mergeRanges sorts clock ranges and joins those that touch or overlap.
func mergeRanges(rs []deleteRange) []deleteRange {
	s := append([]deleteRange(nil), rs...)
	slices.SortFunc(s, func(a, b deleteRange) int { return cmp.Compare(a.clock, b.clock) })
	out := s[:0]
	for _, r := range s {
		if k := len(out); k > 0 && out[k-1].clock+out[k-1].len >= r.clock {
			out[k-1].len = max(out[k-1].len, r.clock+r.len-out[k-1].clock)
			continue
		}
		out = append(out, r)
	}
	return out
}

// SetRandomClientID gives the document a fresh random client id (a
// uint32, as yjs picks) that no struct in it uses yet, and returns it.
// Call it before editing a document read from elsewhere: edits made under
// the id of another writer would collide with that writer's own.
func (d *Doc) SetRandomClientID() uint64 {
	var b [4]byte
	for {
		rand.Read(b[:]) // never fails: it crashes the program instead
		id := uint64(binary.LittleEndian.Uint32(b[:]))
		if !d.store.has(id) {
			d.ClientID = id
			return id
		}
	}
}

// IsEmptyUpdate reports whether a v1 update holds no structs and no
// deletions, as EncodeLocalChanges gives when there is nothing to send (so
// the writer can skip sending it). EncodeDiff's update also carries the
// document's whole delete set, so it is empty only without deletions.
func IsEmptyUpdate(u []byte) bool { return len(u) == 2 && u[0] == 0 && u[1] == 0 }
