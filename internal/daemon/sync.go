package daemon

import (
	"context"
	"fmt"

	"github.com/relay-git-sync/relay-git-sync/internal/ingest"
	"github.com/relay-git-sync/relay-git-sync/internal/mirror"
	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// SyncConfig is a one-shot sync of a relay's folders.
type SyncConfig struct {
	Config
	// Relay is the relay's UUID (lower case).
	Relay string
	// Folder is one shared folder's UUID; "" syncs every folder of Relay
	// the data dir already knows.
	Folder string
	// Report, when set, is told how each folder went, after its sync and
	// its pushes.
	Report func(FolderReport)
}

// FolderReport is how one folder's sync went.
type FolderReport struct {
	Folder store.FolderID
	// Err is why the folder could not be synced at all; Result and Pushes
	// are then empty.
	Err    error
	Result *ingest.Result
	// Pushes is how each of the folder's connectors was pushed.
	Pushes []mirror.Result
}

// Sync fetches each folder from the Relay Server, records a snapshot if
// anything changed, and pushes the folder to its connectors, as the
// original's sync committed and pushed. It fails when a folder or any of
// its documents could not be synced, or a push failed.
func Sync(ctx context.Context, cfg SyncConfig) error {
	c := cfg.withDefaults()
	p, err := open(c, false)
	if err != nil {
		return err
	}
	defer p.close()

	folders, err := syncTargets(p.store, cfg.Relay, cfg.Folder)
	if err != nil {
		return err
	}
	if len(folders) == 0 {
		return fmt.Errorf("no known folders of relay %s in %s; name one with --folder-id", cfg.Relay, c.DataDir)
	}
	failed, pushFailed := 0, 0
	for _, f := range folders {
		rep := FolderReport{Folder: f}
		rep.Result, rep.Err = p.syncer.SyncFolder(ctx, ingest.Request{Folder: f})
		if rep.Err != nil {
			failed++
		} else {
			if err := p.store.AddFolder(f); err != nil {
				return err
			}
			if len(rep.Result.Failed) > 0 {
				failed++
			}
			if rep.Result.Snapshot != nil {
				logHold(c.Logger, p.store, rep.Result.Snapshot)
			}
			rep.Pushes = p.mirrors.PushFolder(ctx, f)
			for _, r := range rep.Pushes {
				if r.Err != nil {
					pushFailed++
				}
			}
		}
		if cfg.Report != nil {
			cfg.Report(rep)
		}
	}
	switch {
	case failed > 0 && pushFailed > 0:
		return fmt.Errorf("%d of %d folders not fully synced, and %d pushes failed", failed, len(folders), pushFailed)
	case failed > 0:
		return fmt.Errorf("%d of %d folders not fully synced", failed, len(folders))
	case pushFailed > 0:
		return fmt.Errorf("%d pushes failed (see `relay-git-sync connectors status`)", pushFailed)
	}
	return nil
}

// syncTargets is the named folder, or every folder of relayID in the store.
func syncTargets(st store.Backend, relayID, folderID string) ([]store.FolderID, error) {
	if folderID != "" {
		return []store.FolderID{{Relay: relayID, Folder: folderID}}, nil
	}
	all, err := st.Folders()
	if err != nil {
		return nil, err
	}
	var out []store.FolderID
	for _, f := range all {
		if f.Relay == relayID {
			out = append(out, f)
		}
	}
	return out, nil
}
