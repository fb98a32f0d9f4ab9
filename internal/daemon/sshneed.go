package daemon

import "github.com/relay-git-sync/relay-git-sync/internal/connectors"

// needsSSH reports whether any connector pushes over SSH: only then is a
// missing SSH_PRIVATE_KEY worth a warning.
func needsSSH(conns []connectors.Connector) bool {
	for _, c := range conns {
		if kind, _ := connectors.ClassifyURL(c.URL); kind == connectors.URLSSH {
			return true
		}
	}
	return false
}
