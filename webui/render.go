package webui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"

	"github.com/relay-git-sync/relay-git-sync/internal/store"
)

// md renders notes: CommonMark with GitHub's tables, strikethrough, task
// lists and autolinks. Without html.WithUnsafe goldmark leaves raw HTML
// out ("<!-- raw HTML omitted -->") and drops links and images whose URL
// is dangerous (javascript:, vbscript:, file:, data: other than images);
// everything else it writes is escaped. The page's CSP forbids inline
// script as a second line of defence.
var md = goldmark.New(
	goldmark.WithExtensions(extension.GFM),
	goldmark.WithRendererOptions(html.WithXHTML()),
)

// renderMarkdown renders a note for the page.
func renderMarkdown(src []byte) (template.HTML, error) {
	var b bytes.Buffer
	if err := md.Convert(src, &b); err != nil {
		return "", fmt.Errorf("markdown: %w", err)
	}
	return template.HTML(b.String()), nil // #nosec: goldmark escapes, raw HTML is omitted
}

// canvasView is an Obsidian canvas listed as its cards and arrows.
type canvasView struct {
	Nodes []canvasNode
	Edges []canvasEdge
	Err   string
}

type canvasNode struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Text  string `json:"text"`
	File  string `json:"file"`
	URL   string `json:"url"`
	Label string `json:"label"`
}

// What returns what the node shows: its text, file, link or group label.
func (n canvasNode) What() string {
	for _, s := range []string{n.Text, n.File, n.URL, n.Label} {
		if s != "" {
			return s
		}
	}
	return "(empty)"
}

type canvasEdge struct {
	From  string `json:"fromNode"`
	To    string `json:"toNode"`
	Label string `json:"label"`
}

func parseCanvas(data []byte) *canvasView {
	var c canvasView
	var raw struct {
		Nodes []canvasNode `json:"nodes"`
		Edges []canvasEdge `json:"edges"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		c.Err = "This canvas is not valid JSON (" + err.Error() + "); its source follows."
		return &c
	}
	c.Nodes, c.Edges = raw.Nodes, raw.Edges
	return &c
}

var funcs = template.FuncMap{
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// utc is the time shown before the script puts it in the viewer's zone.
	"utc": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"size": func(n int64) string {
		switch {
		case n < 1024:
			return fmt.Sprintf("%d B", n)
		case n < 1<<20:
			return fmt.Sprintf("%.1f KiB", float64(n)/1024)
		}
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	},
	"kindDeleted": func(k store.ChangeKind) bool { return k == store.ChangeDeleted },
	"kindRenamed": func(k store.ChangeKind) bool { return k == store.ChangeRenamed },
}
