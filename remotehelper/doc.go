// Package remotehelper owns git-remote-relay, the git remote helper for
// relay:: URLs (gitremote-helpers(7)): with it on PATH,
//
//	git clone relay::<relay-id>/<folder-id>                      (server: git config relay.url, $RELAY_GIT_URL, http://127.0.0.1:8000)
//	git clone relay::https://host[:port][/prefix]/<relay-id>/<folder-id>
//	git clone relay::/path/to/data-dir/<relay-id>/<folder-id>    (or file://…: a data dir no server holds)
//
// clone a Relay shared folder's history, one commit per snapshot, and git
// fetch / git pull bring the new snapshots. It owns the URL forms, the token
// (git credential fill/approve/reject, else RELAY_GIT_TOKEN), the protocol
// conversation, and turning snapshots into a pack in the repository.
//
// # Commits
//
// The commits are internal/history's, made with the history config of the
// data dir's owner (GET /api/v1/history-config, or the store's setting),
// never the user's environment: a clone, another clone made later, and a
// connector mirror of the folder have the same ids. The branch is main.
//
// # Transport
//
// The helper implements the fetch capability and writes the objects itself:
// one pack, with its index, straight into $GIT_DIR/objects/pack, blobs and
// trees stored as deltas against the previous version of the same document
// or directory, reported to git with "lock" (the pack's .keep) and, for a
// clone, "connectivity-ok", so git neither re-indexes nor walks it. The
// import capability (a git fast-import stream) was measured first and was
// five times slower on a 20,000-snapshot history (BenchmarkTransports20k):
// fast-import deflates every blob whole and rebuilds every tree.
//
// Because fetch must list exact commit ids, list does the work: it
// synthesizes the history from the repository's last fetched snapshot (the
// private ref refs/relay/<hash of the URL>/heads/main) to the latest, into a
// pending pack that fetch then installs (and that is removed if git does not
// ask for it, as with git ls-remote). A fetch thus reads and writes only what
// the new snapshots add. Outside a repository (git ls-remote) only the ids
// are computed.
//
// A first fetch (a clone) starts from a kept pack when there is one
// (packcache.go): the pack of the folder's history that `serve` builds once
// and hands out on GET …/pack, or that the first clone from a data dir left
// in its packs/ directory. The helper installs it as is (checking its
// checksums, and the commit it ends at), then synthesizes only the snapshots
// after it.
//
// # Output
//
// stdout carries the protocol and nothing else; progress ("Importing
// snapshots: 45% (9000/20000)", when git asks for progress), the summary of
// git fetch -v and all logs go to stderr. Errors say what to do and leave no
// half-made refs.
//
// # Push
//
// git push writes into Relay (push.go): a push of main that fast-forwards
// the remote's head is turned into the changes between the head's tree and
// the pushed tree (git diff-tree -M: renames keep their documents) and
// written as the Relay plugin would (internal/writeback), through the
// server's write route (serve --allow-writes, the write token) or, for a
// data dir, straight to the Relay Server. Anything Relay cannot hold
// refuses the whole push before anything is written. The push also sends
// a pack of the pushed commits (git pack-objects), and the snapshot that
// records the writes is recorded as the pushed commit itself (see
// internal/history): the next fetch fast-forwards to it. A commit without
// a Relay-Snapshot trailer at the helper's private ref is such a pushed
// commit; it stands for the snapshot after the one its first parents lead
// to (tipAt).
package remotehelper
