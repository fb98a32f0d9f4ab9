// Package yjs decodes and edits Yjs documents in pure Go, as the yjs npm
// package (13.6) does.
//
// Supported: the v1 update format (Y.encodeStateAsUpdate, the updates of
// update events, Y.mergeUpdates) with GC, Skip and pending structs, delete
// sets, every content kind (deleted, JSON, binary, string, embed, format,
// type, any, doc), edits at offsets inside a surrogate pair (both halves
// become U+FFFD, as in yjs), and local edits encoded back into v1 updates.
// Text, map and array roots and nested types are checked against the real
// yjs by the differential suite (oracle_test.go, tools/yjsoracle), including
// edits inside emoji.
//
// Writing back (diffupdate.go, textdiff.go): state vectors
// (EncodeStateVector, DecodeStateVector), updates holding only what a peer
// lacks (EncodeDiff as Y.encodeStateAsUpdate(doc, sv); EncodeLocalChanges
// with only the local edits' deletions), and Type.ApplyDiff, the Relay
// plugin's minimal diff-match-patch edit of a text. The write-back suite
// (writeback_oracle_test.go) has yjs apply every kind of update Go writes.
//
// Not supported: the v2 update format, and formatting: text formatting
// attributes are decoded but String and ToJSON drop them (as Y.Text's
// toString does). XML types are decoded, but XML is not covered by the
// differential suite and is given as plain text: an XML text's formatting
// is left out, elements and fragments are rendered as yjs's toString for
// the common cases. Relay documents use no XML.
package yjs
