package readapi

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// GET …/pack sends a folder's history up to some snapshot as a git pack the
// server built ahead of time and keeps (every clone gets the same one): the
// pack, then its version 2 index, back to back. The headers say which
// snapshot it ends at, its commit, and where the pack ends. A folder the
// server has no pack of yet is a 404, like an unknown one: the remote helper
// then synthesizes the history itself, as it does from a data dir.

// PackContentType is the media type of GET …/pack.
const PackContentType = "application/vnd.relay-git-sync.pack"

// Headers of GET …/pack.
const (
	PackSeqHeader    = "Relay-Snapshot-Seq" // the snapshot the pack ends at
	PackCommitHeader = "Relay-Commit"       // that snapshot's commit
	PackSizeHeader   = "Relay-Pack-Size"    // bytes of pack before the index
)

// Pack is an answer of GET …/pack. The caller reads PackSize bytes of pack,
// then the index, from Body, and closes it.
type Pack struct {
	Seq      uint64
	Commit   string
	PackSize int64
	Body     io.ReadCloser
}

// Pack asks for the pack the server keeps of folder f's history. A server
// without one (or without the route) answers store.ErrNotFound.
func (c *Client) Pack(ctx context.Context, f store.FolderID) (*Pack, error) {
	what := "the pack of folder " + f.String()
	resp, err := c.get(ctx, folderPath(f)+"/pack", what)
	if err != nil {
		return nil, err
	}
	if err := c.checkType(resp, what, PackContentType); err != nil {
		resp.Body.Close()
		return nil, err
	}
	seq, err1 := strconv.ParseUint(resp.Header.Get(PackSeqHeader), 10, 64)
	size, err2 := strconv.ParseInt(resp.Header.Get(PackSizeHeader), 10, 64)
	commit := resp.Header.Get(PackCommitHeader)
	if err1 != nil || err2 != nil || seq == 0 || size < 32 || len(commit) != 40 {
		resp.Body.Close()
		return nil, fmt.Errorf("reading %s from %s: malformed %s, %s or %s header", what, c.base, PackSeqHeader, PackSizeHeader, PackCommitHeader)
	}
	return &Pack{Seq: seq, Commit: commit, PackSize: size, Body: resp.Body}, nil
}
