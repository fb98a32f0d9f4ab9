package store

import "encoding/binary"

// Key layout: the one place that says what lives where in the database.
//
// Every key starts with one prefix byte. Folder-scoped keys then carry the
// folder as 32 bytes (relay UUID, folder UUID, each as 16 binary bytes), so
// one folder's records are contiguous and sorted by sequence number (8 bytes,
// big-endian). Document ids are "packed": 0x00 + 16 bytes for a lower-case
// canonical UUID (what Relay uses), else 0x01 + the id's bytes.
//
//	prefix  key                                    value (first byte: format)          written by
//	------  -------------------------------------  ----------------------------------  ----------------------------
//	'V'     "V"                                    layout version (layoutVersion)      Open, once
//	'b'     'b' blob[20]                           blob record: raw, zstd or delta     PutBlob (never rewritten)
//	'f'     'f' relay[16] folder[16]               folder record (followed folder)     AddFolder, first AddSnapshot
//	's'     's' relay[16] folder[16] seq[8]        snapshot record: time, users,       AddSnapshot
//	                                               changes, tree delta vs seq-1
//	'c'     'c' relay[16] folder[16] seq[8]        checkpoint: the whole tree after    AddSnapshot, when due
//	                                               snapshot seq, zstd-compressed
//	'd'     'd' relay[16] folder[16] packed-doc    DocState (ingest's per-doc cache)   AddSnapshot, PutDocStates
//	'x'     'x' <key of a big value> nonce[8]      part i of a value over maxValue     whoever writes the big value
//	        part[4]                                (the value itself then holds
//	                                               formatParts, nonce, count, length)
//
//	'Q'     "Q"                                    badger.Sequence lease of queue keys  Open (queue.go)
//	'q'     'q' key[8]                             queued webhook event (queueV1)      Enqueue, AckEvents (queue.go)
//	'w'     'w' event id                           webhook id seen (empty, with TTL)   Enqueue (queue.go)
//	'h'     "h"                                    history config (opaque JSON)        SetHistoryConfig (settings.go)
//	'p'     'p' relay[16] folder[16] n conn[n]     push state ('s') or owned paths     SetPushState (pushstate.go)
//	        kind                                   ('o') of a mirror connector
//	'k'     'k' relay[16] folder[16]               held record: the mass-deletion     AddSnapshot, ReleaseHold,
//	                                               hold and dropped snapshots          DropHold (held.go)
//
// Records are hand-written binary (encoding/binary varints; see codec.go for
// each record's fields). A reader that meets an unknown format byte returns
// an error naming the key rather than guessing.
const (
	prefixVersion    = 'V'
	prefixBlob       = 'b'
	prefixFolder     = 'f'
	prefixSnapshot   = 's'
	prefixCheckpoint = 'c'
	prefixDocState   = 'd'
	prefixPart       = 'x'
)

// layoutVersion is stored under "V". Bump it when the key layout changes
// incompatibly; Open refuses a database with a different version.
const layoutVersion = 1

func versionKey() []byte { return []byte{prefixVersion} }

func blobKey(id BlobID) []byte {
	k := make([]byte, 1+len(id))
	k[0] = prefixBlob
	copy(k[1:], id[:])
	return k
}

func folderRecKey(f folderKey) []byte {
	k := make([]byte, 1+len(f))
	k[0] = prefixFolder
	copy(k[1:], f[:])
	return k
}

// folderPrefix is the prefix of every key of kind p (snapshot, checkpoint or
// doc state) that belongs to folder f.
func folderPrefix(p byte, f folderKey) []byte {
	k := make([]byte, 1+len(f), 1+len(f)+8)
	k[0] = p
	copy(k[1:], f[:])
	return k
}

// seqKey is a snapshot ('s') or checkpoint ('c') key.
func seqKey(p byte, f folderKey, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(folderPrefix(p, f), seq)
}

// seqOf returns the sequence number at the end of a seqKey.
func seqOf(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }

func docStateKey(f folderKey, docID string) []byte {
	return appendPackedID(folderPrefix(prefixDocState, f), docID)
}

// partKey names part i of the big value stored under key by the write
// whose marker carries nonce.
func partKey(key []byte, nonce uint64, i int) []byte {
	k := make([]byte, 0, 1+len(key)+12)
	k = append(k, prefixPart)
	k = append(k, key...)
	k = binary.BigEndian.AppendUint64(k, nonce)
	return binary.BigEndian.AppendUint32(k, uint32(i))
}
