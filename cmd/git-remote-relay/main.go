// Command git-remote-relay is the git remote helper for relay:: URLs
// (git clone relay::<relay>/<folder>).
//
// It is not implemented yet. It fails before speaking the helper protocol so
// git reports an error instead of producing an empty or partial clone.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "git-remote-relay: cloning from relay:: remotes is not implemented yet in this build")
	os.Exit(1)
}
