package remotehelper

import (
	"fmt"
	"io"
)

// progress prints a git-style counter on stderr ("Importing snapshots:
// 45% (9000/20000)"), rewriting one line, at most once per percent.
type progress struct {
	w       io.Writer // nil: silent
	title   string
	total   uint64
	n       uint64
	lastPct int
	shown   bool
}

func newProgress(w io.Writer, title string, total uint64) *progress {
	return &progress{w: w, title: title, total: total, lastPct: -1}
}

func (p *progress) add(k uint64) {
	if p == nil {
		return
	}
	p.n += k
	if p.w == nil || p.total == 0 {
		return
	}
	pct := int(min(p.n, p.total) * 100 / p.total)
	if pct == p.lastPct {
		return
	}
	p.lastPct = pct
	p.shown = true
	fmt.Fprintf(p.w, "\r%s: %3d%% (%d/%d)", p.title, pct, min(p.n, p.total), p.total)
}

// done ends the line (", done.").
func (p *progress) done() {
	if p == nil || p.w == nil || !p.shown {
		return
	}
	fmt.Fprintf(p.w, "\r%s: 100%% (%d/%d), done.\n", p.title, p.n, p.n)
}
