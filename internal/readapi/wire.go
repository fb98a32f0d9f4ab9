// Package readapi owns the read API of `relay-git-sync serve` (/api/v1/…,
// described by server/openapi.yaml) on both sides: its JSON shapes and their
// conversion from and to the store's types, the difference encoding of the
// /history stream, and the Go client every reader uses (internal/source's
// server implementation, for the mount, export and the remote helper).
// server/ encodes its answers with the same types, so the two sides cannot
// drift.
package readapi

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// Wire shapes: snake_case keys; times RFC 3339 with nanoseconds, in UTC.

// Folder is one entry of GET /api/v1/folders.
type Folder struct {
	Relay      string     `json:"relay"`
	Folder     string     `json:"folder"`
	LatestSeq  uint64     `json:"latest_seq"`
	LatestTime *time.Time `json:"latest_time"` // null without snapshots
}

// Folders is the answer of GET /api/v1/folders.
type Folders struct {
	Folders []Folder `json:"folders"`
}

// Change is one difference between a snapshot and its parent.
type Change struct {
	Kind    string `json:"kind"` // added | modified | renamed | deleted
	Path    string `json:"path"`
	OldPath string `json:"old_path,omitempty"`
	DocID   string `json:"doc_id"`
}

// SnapshotInfo describes a snapshot without its tree.
type SnapshotInfo struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Users    []string  `json:"users"`
	Changes  []Change  `json:"changes"`
	NumFiles int       `json:"num_files"`
	// Restored is the snapshot a restore brought these changes back from.
	Restored uint64 `json:"restored,omitempty"`
	// Pushed is the git commit whose push wrote these changes.
	Pushed *Pushed `json:"pushed,omitempty"`
}

// Pushed is store.Pushed on the wire: 40-hex ids.
type Pushed struct {
	Commit string `json:"commit"`
	Parent string `json:"parent,omitempty"` // none: the push made the folder's first commit
	Pack   string `json:"pack"`             // a blob: GET …/blobs/{pack}
}

// Snapshots is the answer of GET …/snapshots.
type Snapshots struct {
	Relay     string         `json:"relay"`
	Folder    string         `json:"folder"`
	Snapshots []SnapshotInfo `json:"snapshots"`
}

// File is one file of a snapshot's tree.
type File struct {
	Path  string `json:"path"`
	Blob  string `json:"blob"` // 40-hex git blob id
	Size  int64  `json:"size"`
	Kind  string `json:"kind"`
	DocID string `json:"doc_id"`
}

// Snapshot is the answer of GET …/snapshots/{seq}: a snapshot with its
// whole tree, sorted by path.
type Snapshot struct {
	Relay  string `json:"relay"`
	Folder string `json:"folder"`
	SnapshotInfo
	Files []File `json:"files"`
}

// HistoryLine is one line of GET …/history: a snapshot with its whole tree
// (Files, first line only) or with the difference from the line before
// (Set: files added or changed, Deleted: paths removed).
type HistoryLine struct {
	SnapshotInfo
	Files   *[]File  `json:"files,omitempty"`
	Set     []File   `json:"set,omitempty"`
	Deleted []string `json:"deleted,omitempty"`
}

// HistoryEnd is the last line of a complete …/history answer; an answer
// without it was cut short (the error, when there is one, is an Error line
// before).
type HistoryEnd struct {
	End   bool   `json:"end"`
	Count uint64 `json:"count"`
}

// Error is the body of every error answer, and the line that says a
// …/history answer was cut short.
type Error struct {
	Error string `json:"error"`
}

// HistoryContentType is the media type of GET …/history (one JSON value a line).
const HistoryContentType = "application/x-ndjson"

// NewFolder is the entry of a folder whose latest snapshot is seq at t
// (seq 0: none yet).
func NewFolder(f store.FolderID, seq uint64, t time.Time) Folder {
	out := Folder{Relay: f.Relay, Folder: f.Folder, LatestSeq: seq}
	if seq != 0 && !t.IsZero() {
		u := t.UTC()
		out.LatestTime = &u
	}
	return out
}

// ID is the folder's store id.
func (f Folder) ID() store.FolderID { return store.FolderID{Relay: f.Relay, Folder: f.Folder} }

// NewSnapshotInfo is the wire form of in.
func NewSnapshotInfo(in store.SnapshotInfo) SnapshotInfo {
	out := SnapshotInfo{Seq: in.Seq, Time: in.Time.UTC(), Users: in.Users, Changes: make([]Change, len(in.Changes)), NumFiles: in.NumFiles, Restored: in.Origin.Restored}
	if p := in.Origin.Pushed; p != nil {
		out.Pushed = &Pushed{Commit: hex.EncodeToString(p.Commit[:]), Pack: p.Pack.String()}
		if p.Parent != ([20]byte{}) {
			out.Pushed.Parent = hex.EncodeToString(p.Parent[:])
		}
	}
	if out.Users == nil {
		out.Users = []string{} // [] rather than null, as the document says
	}
	for i, c := range in.Changes {
		out.Changes[i] = Change{Kind: c.Kind.String(), Path: c.Path, OldPath: c.OldPath, DocID: c.DocID}
	}
	return out
}

// infoOf is the SnapshotInfo of a snapshot with its tree.
func infoOf(s *store.Snapshot) store.SnapshotInfo {
	return store.SnapshotInfo{Seq: s.Seq, Time: s.Time, Users: s.Users, Changes: s.Changes, Origin: s.Origin, NumFiles: len(s.Files)}
}

// NewSnapshot is the wire form of s.
func NewSnapshot(s *store.Snapshot) Snapshot {
	return Snapshot{Relay: s.Folder.Relay, Folder: s.Folder.Folder, SnapshotInfo: NewSnapshotInfo(infoOf(s)), Files: NewFiles(s.Files)}
}

// NewFiles is the wire form of files.
func NewFiles(files []store.File) []File {
	out := make([]File, len(files))
	for i, f := range files {
		out[i] = File{Path: f.Path, Blob: f.Blob.String(), Size: f.Size, Kind: f.Kind, DocID: f.DocID}
	}
	return out
}

var changeKinds = map[string]store.ChangeKind{
	store.ChangeAdded.String():    store.ChangeAdded,
	store.ChangeModified.String(): store.ChangeModified,
	store.ChangeRenamed.String():  store.ChangeRenamed,
	store.ChangeDeleted.String():  store.ChangeDeleted,
}

// Store converts w back, checking what the store's types cannot hold.
func (w SnapshotInfo) Store() (store.SnapshotInfo, error) {
	in := store.SnapshotInfo{Seq: w.Seq, Time: w.Time.UTC(), Users: w.Users, NumFiles: w.NumFiles, Origin: store.Origin{Restored: w.Restored}}
	if w.Seq == 0 {
		return in, fmt.Errorf("snapshot without a sequence number")
	}
	if w.Restored >= w.Seq {
		return in, fmt.Errorf("snapshot %d: restored from snapshot %d, which is not an earlier one", w.Seq, w.Restored)
	}
	if p := w.Pushed; p != nil {
		out := &store.Pushed{}
		var err error
		if out.Pack, err = store.ParseBlobID(p.Pack); err == nil {
			err = parseID(out.Commit[:], p.Commit)
		}
		if err == nil && p.Parent != "" {
			err = parseID(out.Parent[:], p.Parent)
		}
		if err != nil || out.Commit == ([20]byte{}) {
			return in, fmt.Errorf("snapshot %d: bad pushed commit %+v", w.Seq, *p)
		}
		in.Origin.Pushed = out
	}
	for _, c := range w.Changes {
		k, ok := changeKinds[c.Kind]
		if !ok {
			return in, fmt.Errorf("snapshot %d: unknown change kind %q", w.Seq, c.Kind)
		}
		in.Changes = append(in.Changes, store.Change{Kind: k, Path: c.Path, OldPath: c.OldPath, DocID: c.DocID})
	}
	return in, nil
}

// storeFiles converts files back, sorted by path.
func storeFiles(ws []File) ([]store.File, error) {
	out := make([]store.File, len(ws))
	for i, w := range ws {
		id, err := store.ParseBlobID(w.Blob)
		if err != nil {
			return nil, fmt.Errorf("file %q: %w", w.Path, err)
		}
		out[i] = store.File{Path: w.Path, Blob: id, Size: w.Size, Kind: w.Kind, DocID: w.DocID}
	}
	slices.SortFunc(out, byPath)
	return out, nil
}

func byPath(a, b store.File) int { return strings.Compare(a.Path, b.Path) }

// snapshot converts a snapshot of folder f back.
func (w SnapshotInfo) snapshot(f store.FolderID, files []File) (*store.Snapshot, error) {
	in, err := w.Store()
	if err != nil {
		return nil, err
	}
	s := &store.Snapshot{Folder: f, Seq: in.Seq, Time: in.Time, Users: in.Users, Changes: in.Changes, Origin: in.Origin}
	if s.Files, err = storeFiles(files); err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", w.Seq, err)
	}
	return s, nil
}

// parseID reads a 40-hex object id into dst.
func parseID(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("%q: not a %d-hex object id", s, 2*len(dst))
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}
