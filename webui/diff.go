package webui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"
)

func utf8Valid(b []byte) bool { return utf8.Valid(b) }

// Limits that keep a diff page quick and its HTML of bounded size.
const (
	diffContext   = 3     // unchanged lines around each change
	maxDiffLines  = 20000 // lines shown; the rest is cut with a note
	maxWordDiffLn = 4000  // longest line given word-level highlights
	maxWordPairs  = 2000  // changed line pairs given word-level highlights
)

// seg is part of a changed line; Changed marks the words that differ from
// the paired line on the other side.
type seg struct {
	Text    string
	Changed bool
}

// diffLine is one line of a unified diff. Op is ' ', '-' or '+'; OldNo
// and NewNo are 1-based line numbers (0 where the line is not on a side).
type diffLine struct {
	Op           byte
	Text         string
	Segs         []seg // word-level highlights of a changed line, nil without
	OldNo, NewNo int
}

// Class is the line's CSS class.
func (l diffLine) Class() string {
	switch l.Op {
	case '-':
		return "del"
	case '+':
		return "add"
	}
	return "ctx"
}

// Sign is the character a unified diff starts the line with.
func (l diffLine) Sign() string { return string(l.Op) }

type hunk struct {
	OldStart, OldLines, NewStart, NewLines int
	Lines                                  []diffLine
}

// Header is the hunk's "@@ -a,b +c,d @@" line.
func (h hunk) Header() string {
	return fmt.Sprintf("@@ -%d,%d +%d,%d @@", h.OldStart, h.OldLines, h.NewStart, h.NewLines)
}

// DiffResult is a line diff cut into hunks.
type DiffResult struct {
	Hunks          []hunk
	Added, Deleted int
	Truncated      bool // more than maxDiffLines lines: the rest is left out
}

// splitLines cuts s into lines without their "\n" (a last line without one
// is kept; "" is no lines).
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// Diff compares two texts line by line (Myers, through go-diff's line
// mode), groups the changes into hunks with diffContext lines of context,
// and marks the words that changed inside paired changed lines.
func Diff(a, b string) DiffResult {
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = 5 * time.Second
	ca, cb, lines := dmp.DiffLinesToRunes(a, b)
	diffs := dmp.DiffMainRunes(ca, cb, false)
	diffs = dmp.DiffCharsToLines(diffs, lines)

	// Flatten into one line per entry with its numbers.
	all := make([]diffLine, 0, max(len(ca), len(cb))) // one rune per line
	oldNo, newNo := 0, 0
	var res DiffResult
	for _, d := range diffs {
		for _, t := range splitLines(d.Text) {
			switch d.Type {
			case diffmatchpatch.DiffEqual:
				oldNo++
				newNo++
				all = append(all, diffLine{Op: ' ', Text: t, OldNo: oldNo, NewNo: newNo})
			case diffmatchpatch.DiffDelete:
				oldNo++
				res.Deleted++
				all = append(all, diffLine{Op: '-', Text: t, OldNo: oldNo})
			case diffmatchpatch.DiffInsert:
				newNo++
				res.Added++
				all = append(all, diffLine{Op: '+', Text: t, NewNo: newNo})
			}
		}
	}

	// Hunks: each change with its context, merged when contexts touch.
	// oldAt and newAt count each side's lines before an index.
	oldAt, newAt := make([]int, len(all)+1), make([]int, len(all)+1)
	for i, l := range all {
		oldAt[i+1], newAt[i+1] = oldAt[i], newAt[i]
		if l.OldNo != 0 {
			oldAt[i+1]++
		}
		if l.NewNo != 0 {
			newAt[i+1]++
		}
	}
	shown := 0
	for i := 0; i < len(all); {
		if all[i].Op == ' ' {
			i++
			continue
		}
		start := max(0, i-diffContext)
		end := i
		for end < len(all) {
			if all[end].Op != ' ' {
				end++
				continue
			}
			// A run of context: end the hunk if it is long enough to split.
			j := end
			for j < len(all) && all[j].Op == ' ' {
				j++
			}
			if j == len(all) || j-end > 2*diffContext {
				end = min(j, end+diffContext)
				break
			}
			end = j
		}
		if shown+end-start > maxDiffLines {
			res.Truncated = true
			break
		}
		shown += end - start
		res.Hunks = append(res.Hunks, makeHunk(all[start:end], oldAt[start], newAt[start]))
		i = end
	}
	pairs := 0
	for hi := range res.Hunks {
		pairs = wordDiff(dmp, res.Hunks[hi].Lines, pairs)
	}
	return res
}

// makeHunk sums up lines ls, which follow oldBefore old lines and
// newBefore new lines. An empty side starts at the line before it, as in
// diff -u.
func makeHunk(ls []diffLine, oldBefore, newBefore int) hunk {
	h := hunk{Lines: ls, OldStart: oldBefore, NewStart: newBefore}
	for _, l := range ls {
		if l.OldNo != 0 {
			h.OldLines++
		}
		if l.NewNo != 0 {
			h.NewLines++
		}
	}
	if h.OldLines > 0 {
		h.OldStart++
	}
	if h.NewLines > 0 {
		h.NewStart++
	}
	return h
}

// wordDiff pairs each run of deleted lines with the run of added lines
// after it, line by line, and marks the changed words of each pair. It
// stops after maxWordPairs pairs in all (pairs is the count so far).
func wordDiff(dmp *diffmatchpatch.DiffMatchPatch, ls []diffLine, pairs int) int {
	for i := 0; i < len(ls); {
		if ls[i].Op != '-' {
			i++
			continue
		}
		d0 := i
		for i < len(ls) && ls[i].Op == '-' {
			i++
		}
		a0 := i
		for i < len(ls) && ls[i].Op == '+' {
			i++
		}
		n := min(a0-d0, i-a0)
		for k := 0; k < n && pairs < maxWordPairs; k++ {
			del, add := &ls[d0+k], &ls[a0+k]
			if len(del.Text) > maxWordDiffLn || len(add.Text) > maxWordDiffLn {
				continue
			}
			pairs++
			diffs := dmp.DiffMain(del.Text, add.Text, false)
			diffs = dmp.DiffCleanupSemantic(diffs)
			for _, d := range diffs {
				switch d.Type {
				case diffmatchpatch.DiffEqual:
					del.Segs = append(del.Segs, seg{Text: d.Text})
					add.Segs = append(add.Segs, seg{Text: d.Text})
				case diffmatchpatch.DiffDelete:
					del.Segs = append(del.Segs, seg{Text: d.Text, Changed: true})
				case diffmatchpatch.DiffInsert:
					add.Segs = append(add.Segs, seg{Text: d.Text, Changed: true})
				}
			}
		}
	}
	return pairs
}

// splitRow is one row of the side-by-side view: a line on the left (the
// older version), on the right, or both.
type splitRow struct {
	Header      string // a hunk's header row when set
	Left, Right *diffLine
}

func splitRows(hs []hunk) []splitRow {
	var out []splitRow
	for _, h := range hs {
		out = append(out, splitRow{Header: h.Header()})
		ls := h.Lines
		for i := 0; i < len(ls); {
			if ls[i].Op == ' ' {
				out = append(out, splitRow{Left: &ls[i], Right: &ls[i]})
				i++
				continue
			}
			d0 := i
			for i < len(ls) && ls[i].Op == '-' {
				i++
			}
			a0 := i
			for i < len(ls) && ls[i].Op == '+' {
				i++
			}
			dels, adds := ls[d0:a0], ls[a0:i]
			for k := 0; k < max(len(dels), len(adds)); k++ {
				var row splitRow
				if k < len(dels) {
					row.Left = &dels[k]
				}
				if k < len(adds) {
					row.Right = &adds[k]
				}
				out = append(out, row)
			}
		}
	}
	return out
}
