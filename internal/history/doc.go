// Package history owns the translation of snapshots into git objects: the
// tree of a snapshot, its commit, and a folder's whole linear history, built
// as go-git plumbing objects in any storer.EncodedObjectStorer.
//
// # Determinism
//
// A commit is a pure function of (snapshot, parents, Config): nothing depends
// on the wall clock, the local time zone, the process environment, map
// iteration order, the machine, or the order in which the store returns files
// and changes. So `git clone relay::…` on any machine, on any day, and a
// connector that pushes the folder without a prefix to a remote without
// foreign commits produce the very same commit ids — provided they use the
// same Config (identity and user mapping). Callers that must agree on ids
// (the remote helper and the mirror) must therefore take the Config from the
// same place (the server / data dir), never from their own environment:
// `serve` and `sync` build it from their own GIT_AUTHOR_NAME, GIT_AUTHOR_EMAIL,
// GIT_COMMITTER_NAME, GIT_COMMITTER_EMAIL (IdentityFromEnv) and --authors-file
// and record its JSON form (Config.MarshalJSON) in the store
// (store.SetHistoryConfig); the read API serves it at GET
// /api/v1/history-config, and git-remote-relay synthesizes with that.
//
// # Commit format
//
//	tree <tree>
//	parent <previous commit>          (none for a folder's first snapshot)
//	author <Name> <<email>> <unix seconds of snapshot time> +0000
//	committer <Name> <<email>> <same> +0000
//
//	<subject>                         see Message
//
//	<one line per change>             when there are two or more changes,
//	                                  or the subject had to be shortened
//
//	Co-authored-by: Name <email>      Relay users with an identity, sorted
//	Relay-Users: id1, id2             Relay users without one, sorted
//	Relay-Snapshot: <relay>/<folder>#<seq>
//
// Every snapshot becomes exactly one commit, even when its tree equals its
// parent's (a snapshot that only records users, for example), so snapshot
// sequence numbers and commits correspond one to one.
//
// Trees hold every file as a regular, non-executable blob (mode 100644) whose
// id is the store's BlobID (the git blob id of the content): the synthesizer
// never needs, reads or writes the content. A few names are written under
// safe ones (internal/gitpath: ".gitmodules", "CON", names over 255 bytes),
// chosen from the names of the directory alone, and the commit that brings
// such a file says so in its body. Writing the blobs into the target
// repository is the caller's job (a go-git storer, fast-import, …).
//
// # Speed
//
// A Synthesizer keeps the directory tree of the last files it was given with
// each directory's hash, so the next snapshot costs a comparison of the two
// file lists and the re-encoding of the directories on the paths that changed
// (see BenchmarkSynthesize20k). It is therefore fastest when one Synthesizer
// is used per folder, for that folder's snapshots in order.
package history
