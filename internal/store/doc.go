// Package store owns relay-git-sync's one Badger database: the content of
// every file version ever seen (blobs, stored once by their git blob id and
// delta-compressed against earlier versions of the same document), the
// snapshots of each followed shared folder (a monotonic sequence per
// (relay, folder), each with its time, the Relay users seen, what changed and
// the whole file tree), and ingest's per-document cache (DocState).
//
// Later issues add their own key spaces here (webhook queue, dedupe ids, push
// state); keys.go is the one place that documents the key layout, and every
// value starts with a format byte so records can evolve.
//
// # Storage efficiency
//
// The store is meant to stay close to the size of a `git gc --aggressive`
// pack of the same history:
//
//   - Blobs are content-addressed: unchanged content is never written twice.
//     A new version of a document is stored as a delta against an earlier
//     version (the unchanged prefix and suffix are cut off and the rest is
//     zstd-compressed with the base's differing region as a raw dictionary).
//     Bases are chosen as skip-deltas (see blob.go), so a chain is at most
//     log2(versions) deep — never more than 32 — without the periodic full
//     copies a plain linear chain would need.
//   - Trees are not stored whole for every snapshot: a snapshot records only
//     the File records that were added or changed and the paths removed since
//     the previous snapshot, and a zstd-compressed full manifest (checkpoint)
//     is written when the deltas since the last one add up to more than about
//     twice the tree (see checkpointDue). The latest tree of every folder is
//     cached in memory, so AddSnapshot and Latest cost O(changes) I/O.
//   - Small records stay in Badger's LSM tree, whose blocks are
//     zstd-compressed; only values above 64 KiB go to the value log.
//
// BenchmarkStoreSize (size_bench_test.go) builds 5,000 snapshots of a
// 300-file folder, one document replaying a real editing trace, and the
// same history as a git repository: the store takes about 0.55× the space
// of the repository after `git gc --aggressive`.
//
// # Concurrency and durability
//
// A Store is safe for concurrent use. Snapshots of one folder are serialized
// (sequence numbers are assigned under a per-folder lock); different folders
// commit concurrently. With Options.SyncWrites every commit is durable when it
// returns. Badger (v4.9.6) syncs its log once per transaction, even when its
// writer goroutine batches several (db.go writeRequests), so concurrent
// transactions do not share fsyncs by themselves. The webhook queue, the one
// path with many small concurrent writes, therefore does its own group
// commit: Enqueue hands events to one committer that writes every waiting
// event in a single transaction (queue.go).
//
// Badger is single-process: a second Open of the same directory, even from
// another process, fails (the error names the lock and suggests that
// `relay-git-sync serve` may be running).
package store
