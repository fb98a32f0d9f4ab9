package main

import (
	"errors"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
	"github.com/relay-git-sync/relay-git-sync/server"
)

// storeReader serves the read API from the store.
type storeReader struct{ st *store.Store }

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errors.Join(server.ErrNotFound, err)
	}
	return err
}

func (r storeReader) Folders() ([]server.FolderSummary, error) {
	folders, err := r.st.Folders()
	if err != nil {
		return nil, err
	}
	out := make([]server.FolderSummary, 0, len(folders))
	for _, f := range folders {
		s := server.FolderSummary{Relay: f.Relay, Folder: f.Folder}
		seq, t, err := r.st.Head(f)
		if err != nil {
			return nil, err
		}
		s.LatestSeq, s.LatestTime = seq, t
		out = append(out, s)
	}
	return out, nil
}

func (r storeReader) Snapshots(relay, folder string, after uint64) ([]server.SnapshotInfo, error) {
	f := store.FolderID{Relay: relay, Folder: folder}
	if ok, err := r.known(f); err != nil || !ok {
		return nil, errors.Join(server.ErrNotFound, err)
	}
	infos, err := r.st.Snapshots(f, after)
	if err != nil {
		return nil, notFound(err)
	}
	out := make([]server.SnapshotInfo, len(infos))
	for i, in := range infos {
		out[i] = toServerInfo(in)
	}
	return out, nil
}

func (r storeReader) known(f store.FolderID) (bool, error) {
	folders, err := r.st.Folders()
	if err != nil {
		return false, err
	}
	for _, g := range folders {
		if g == f {
			return true, nil
		}
	}
	return false, nil
}

func (r storeReader) Snapshot(relay, folder string, seq uint64) (*server.Snapshot, error) {
	f := store.FolderID{Relay: relay, Folder: folder}
	var snap *store.Snapshot
	var err error
	if seq == 0 {
		snap, err = r.st.Latest(f)
	} else {
		snap, err = r.st.Snapshot(f, seq)
	}
	if err != nil {
		return nil, notFound(err)
	}
	out := &server.Snapshot{SnapshotInfo: toServerInfo(store.SnapshotInfo{Seq: snap.Seq, Time: snap.Time, Users: snap.Users, Changes: snap.Changes, NumFiles: len(snap.Files)})}
	out.Files = make([]server.File, len(snap.Files))
	for i, fl := range snap.Files {
		out.Files[i] = server.File{Path: fl.Path, Blob: fl.Blob.String(), Kind: fl.Kind, DocID: fl.DocID, Size: fl.Size}
	}
	return out, nil
}

func (r storeReader) Blob(id string) ([]byte, error) {
	b, err := store.ParseBlobID(id)
	if err != nil {
		return nil, errors.Join(server.ErrNotFound, err)
	}
	data, err := r.st.Blob(b)
	return data, notFound(err)
}

func toServerInfo(in store.SnapshotInfo) server.SnapshotInfo {
	out := server.SnapshotInfo{Seq: in.Seq, Time: in.Time, Users: in.Users, NumFiles: in.NumFiles}
	for _, c := range in.Changes {
		out.Changes = append(out.Changes, server.Change{Kind: c.Kind.String(), Path: c.Path, OldPath: c.OldPath, DocID: c.DocID})
	}
	return out
}

func (r storeReader) History(relay, folder string, after uint64, fn func(*server.HistoryEntry) error) error {
	f := store.FolderID{Relay: relay, Folder: folder}
	if ok, err := r.known(f); err != nil || !ok {
		return errors.Join(server.ErrNotFound, err)
	}
	var prev []store.File
	first := true
	return r.st.Walk(f, after, func(snap *store.Snapshot) error {
		e := &server.HistoryEntry{SnapshotInfo: toServerInfo(store.SnapshotInfo{Seq: snap.Seq, Time: snap.Time, Users: snap.Users, Changes: snap.Changes, NumFiles: len(snap.Files)})}
		if first {
			e.Files = toServerFiles(snap.Files)
			first = false
		} else {
			set, deleted := diffFiles(prev, snap.Files)
			e.Set, e.Deleted = toServerFiles(set), deleted
		}
		prev = snap.Files
		return fn(e)
	})
}

// diffFiles compares two trees sorted by path: the files of cur that are
// new or different, and the paths of prev that cur no longer has.
func diffFiles(prev, cur []store.File) (set []store.File, deleted []string) {
	i, j := 0, 0
	for i < len(prev) || j < len(cur) {
		switch {
		case j == len(cur) || i < len(prev) && prev[i].Path < cur[j].Path:
			deleted = append(deleted, prev[i].Path)
			i++
		case i == len(prev) || cur[j].Path < prev[i].Path:
			set = append(set, cur[j])
			j++
		default:
			if prev[i] != cur[j] {
				set = append(set, cur[j])
			}
			i++
			j++
		}
	}
	return set, deleted
}

func toServerFiles(files []store.File) []server.File {
	if files == nil {
		return nil
	}
	out := make([]server.File, len(files))
	for i, fl := range files {
		out[i] = server.File{Path: fl.Path, Blob: fl.Blob.String(), Kind: fl.Kind, DocID: fl.DocID, Size: fl.Size}
	}
	return out
}

// HistoryConfig serves what serve recorded at start (a store that never had
// one means the defaults: "{}").
func (r storeReader) HistoryConfig() ([]byte, error) {
	b, err := r.st.HistoryConfig()
	if errors.Is(err, store.ErrNotFound) {
		return []byte("{}"), nil
	}
	return b, err
}
