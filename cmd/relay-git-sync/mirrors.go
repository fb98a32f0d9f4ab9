package main

import (
	"fmt"
	"io"

	"github.com/relay-git-sync/relay-git-sync/internal/mirror"
)

// printPush prints how a push went, one line.
func printPush(w io.Writer, r mirror.Result) {
	target := r.URL + " " + r.Branch
	if r.Prefix != "" {
		target += " (" + r.Prefix + "/)"
	}
	switch {
	case r.Err != nil:
		fmt.Fprintf(w, "  push %s: failed: %v\n", target, r.Err)
	case r.Seq == 0:
		fmt.Fprintf(w, "  push %s: no snapshot yet\n", target)
	case r.UpToDate && r.Held != 0:
		fmt.Fprintf(w, "  push %s: snapshot %d and later are held (mass deletion; see `relay-git-sync held list`); the branch stays at snapshot %d\n", target, r.Held, r.Seq)
	case r.UpToDate:
		fmt.Fprintf(w, "  push %s: up to date (snapshot %d, %s)\n", target, r.Seq, short(r.Commit.String()))
	default:
		merged := ""
		if r.Merged {
			merged = ", merged with the branch's own commits"
		}
		fmt.Fprintf(w, "  push %s: pushed %d commit(s) (snapshot %d, %s%s) in %s\n", target, r.Commits, r.Seq, short(r.Commit.String()), merged, r.Took.Round(1e6))
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
