package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
)

// The Python relay-git-sync kept JSON state files in <data>/state/ and one
// working tree per folder in <data>/repos/ (and a copy of the SSH key in
// <data>/ssh/). relay-git-sync reads none of them; an operator switching in
// place should know that and what to do with them.
var originalDirs = []string{"state", "repos", "ssh"}

// noteOriginalLayout logs, at info level, what serve does not read of a
// data dir the Python relay-git-sync used, and what to do with it.
func noteOriginalLayout(log *slog.Logger, dataDir string) {
	var found []string
	for _, d := range originalDirs {
		if fi, err := os.Stat(filepath.Join(dataDir, d)); err == nil && fi.IsDir() {
			found = append(found, d+"/")
		}
	}
	// ssh/ alone is too common a name to say anything.
	if len(found) == 0 || (len(found) == 1 && found[0] == "ssh/") {
		return
	}
	log.Info("the data dir holds the Python relay-git-sync's files, which relay-git-sync does not read: "+
		"each folder's state is recorded from the Relay Server, and history continues in the connectors' remotes. "+
		"Check that no clone under repos/ has commits its remote lacks (git -C repos/<relay>/<folder> log --branches --not --remotes), "+
		"then move state/, repos/ and ssh/ (a copy of SSH_PRIVATE_KEY) out of the data dir; see docs/migrating.md",
		"data_dir", dataDir, "found", found)
}
