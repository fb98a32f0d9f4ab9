// Package mirror owns pushing: it brings each connector's git branch (see
// internal/connectors) up to date with its folder's snapshots, after every
// new snapshot and at startup, without ever losing a commit on either side.
//
// # Per connector
//
// A connector (relay, folder, url, branch, prefix, known_hosts) has:
//
//   - a bare mirror repository, <data-dir>/mirrors/<relay>/<folder>/<id>.git
//     (go-git filesystem storage, readable by C git), id = ConnectorID (a
//     hash of url, branch and prefix). It holds the commits made for the
//     connector and what was fetched from the remote, so a retry or a
//     restart rebuilds nothing;
//   - a push state in the store (store.PushState): the last commit pushed
//     and its snapshot, whether it is the folder's pure history, the last
//     error, failed attempts in a row, the next retry; and, without a
//     prefix, every path the folder has ever had.
//
// # What is pushed
//
// Each new snapshot becomes one commit (history.Synthesizer: the same
// author, committer, date and message as everywhere), on top of the last
// commit pushed, P:
//
//   - No prefix, and the branch has never had commits other than the
//     folder's: the commits are history.Linear's, so the remote carries the
//     very ids a `git clone relay::…` gets (tested).
//   - Otherwise each commit's tree is its parent's with the folder's paths
//     replaced by the snapshot's (history.Synthesizer.Overlay): everything
//     under the prefix, or, without a prefix, only the paths the folder has
//     ever had. Files the folder never had (README, CI config, another
//     connector's directory) stay, even with an empty prefix.
//
// The remote branch is read first (one SSH connection when nothing else
// happened). When it moved — someone pushed, or it existed before the
// connector — it is fetched into the mirror, and a merge commit joins both
// lines: parents (remote head, our newest commit), tree = the remote's tree
// with the folder's paths from the latest snapshot, message "Merge Relay
// folder snapshot #N into <branch>" (MergeMessage), author and date of the
// snapshot, so merges are deterministic too. The push is then always a
// fast-forward: nothing is ever forced. On a first push to a branch with
// history the commits start on the remote head (no merge is needed); a
// branch the remote lacks (an empty repository) is created. If the remote
// head already carries this folder's commits (a lost push state, a deleted
// mirror), they are adopted instead of being stacked again.
//
// A push rejected because the branch moved meanwhile is retried at once
// (fetch, merge, push); a push rejected although the branch did not move (a
// hook, a protected branch) is an error naming the remote's reason. Failed
// attempts are retried with exponential backoff (Config.MinBackoff,
// MaxBackoff); a newer snapshot never queues behind a pending one — the
// next attempt pushes whatever is newest. One connector's failure never
// holds up another's, and Notify never blocks.
//
// # Transport
//
// go-git's transports carry everything, so that credentials stay in memory:
//
//   - SSH: the key from SSH_PRIVATE_KEY (internal/sshkey), never written
//     to disk; the server's host key checked against <data-dir>/known_hosts
//     (created on first use with the published keys of github.com,
//     gitlab.com and bitbucket.org, DefaultKnownHosts) and the connector's
//     own known_hosts file. An unknown or changed host key is refused with
//     a HostKeyError that says what to do.
//   - HTTPS: basic auth with RELAY_GIT_HTTPS_TOKEN (user
//     RELAY_GIT_HTTPS_USERNAME, default x-access-token), never logged;
//     credentials are never sent over plain http except to loopback.
//   - Local path or file:// URL: git's own receive-pack (local backups).
//
// # Packs, and the figures behind the choice
//
// The objects to send are found by a walk of our own (repo.pushObjects):
// new commits are those reachable from the head and not from the remote's
// refs, and only the subtrees and blobs that differ from their parents'
// are sent — go-git's revlist.Objects instead reads every object the remote
// already has, on every push. The pack is encoded by `git pack-objects`
// (C git, fed our object list) when git is installed and the push has at
// least gitPackThreshold objects, else by go-git's encoder.
// BenchmarkPushLongHistory, 5,000 snapshots of a 200-document folder
// (33,552 objects) to an empty bare repository on the same machine
// (2 cores; time, pack size):
//
//	our walk + git pack-objects   11.5 s    2.7 MB   (chosen when git is installed)
//	git push (C git end to end)    7.6 s    2.7 MB   (needs the key in a file: not used)
//	our walk + go-git, window 10  30.1 s   13.6 MB   (pure-Go fallback)
//	our walk + go-git, no deltas  15.7 s   17.8 MB
//	go-git Remote.Push            44.6 s     -
//
// and one more snapshot on top of that history (two runs, the machine
// busier in the first):
//
//	our walk + go-git             19–48 ms   (chosen: under gitPackThreshold)
//	our walk + git pack-objects   31–34 ms
//	git push                      21–57 ms
//	go-git Remote.Push            1.9–4.0 s  (walks the remote's whole history)
//
// Of the 11.5 s, the walk over 33,552 loose objects takes about 4 s and
// pack-objects about 4 s. The mirror's loose objects are therefore packed
// once there are more than repackThreshold (`git repack -d`, or go-git
// without deltas when git is missing).
//
// Snapshot to commit on the remote over SSH on loopback
// (TestSSHSnapshotToRemoteLatency): about 130 ms median, 150 ms at most.
package mirror
