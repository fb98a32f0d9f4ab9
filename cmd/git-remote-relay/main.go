// Command git-remote-relay is the git remote helper for relay:: URLs: with it
// on PATH, `git clone relay::<relay-id>/<folder-id>` (or
// relay::https://host/<relay-id>/<folder-id>, or relay::/path/to/data-dir/…)
// clones the history of a Relay shared folder that relay-git-sync records,
// and `git fetch` / `git pull` bring its new snapshots. See package
// remotehelper.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/relay-git-sync/relay-git-sync/remotehelper"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: git-remote-relay <remote> <url>\n\ngit runs this helper for relay:: URLs, as in\n  git clone relay::<relay-id>/<folder-id>")
		os.Exit(129)
	}
	if os.Getenv("GOGC") == "" {
		// A clone allocates a lot of short-lived snapshot trees: collecting
		// less often saves about a tenth of its CPU time for some more memory.
		debug.SetGCPercent(300)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	defer stop()
	dir, _ := os.Getwd()
	err := remotehelper.Run(ctx, remotehelper.Config{
		Remote: os.Args[1], URL: os.Args[2],
		Getenv: os.Getenv, Environ: os.Environ(), Dir: dir,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			os.Exit(130)
		}
		fmt.Fprintf(os.Stderr, "fatal: %v\n", err)
		stop()
		os.Exit(128)
	}
}
