package webui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"

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
	goldmark.WithParserOptions(parser.WithASTTransformers(util.Prioritized(linkTransformer{}, 100))),
	goldmark.WithRendererOptions(html.WithXHTML()),
)

// renderMarkdown renders a note for the page; links (nil = none) points
// its relative links and images at the files of its snapshot.
func renderMarkdown(src []byte, links *noteLinks) (template.HTML, error) {
	var b bytes.Buffer
	pc := parser.NewContext()
	if links != nil {
		pc.Set(linksKey, links)
		src = wikiLinks.ReplaceAllFunc(src, func(m []byte) []byte {
			sub := wikiLinks.FindSubmatch(m)
			label := sub[3]
			if len(label) == 0 {
				label = sub[2]
			}
			return slices.Concat(sub[1], []byte("["), label, []byte("](<"), sub[2], []byte(">)"))
		})
	}
	if err := md.Convert(src, &b, parser.WithContext(pc)); err != nil {
		return "", fmt.Errorf("markdown: %w", err)
	}
	return template.HTML(b.String()), nil // #nosec: goldmark escapes, raw HTML is omitted
}

// wikiLinks are Obsidian's [[name]], [[name|alias]], [[name#heading]] and
// ![[embed]]; they become markdown links and images with the name as a
// destination, which noteLinks then finds in the snapshot. (They are
// rewritten in code blocks too: the text shows as a link there.)
var wikiLinks = regexp.MustCompile(`(!?)\[\[([^\[\]|#<>\n]+)(?:#[^\[\]|\n]*)?(?:\|([^\[\]\n]*))?\]\]`)

var linksKey = parser.NewContextKey()

// noteLinks resolves a note's relative links and images to the pages and
// contents of the same snapshot, as Obsidian resolves them: relative to
// the note, then to the folder root, then a bare name anywhere (when only
// one file has it).
type noteLinks struct {
	f    *folderRef
	snap *store.Snapshot
	dir  string // the note's directory ("." at the root)
}

func (nl *noteLinks) resolve(dest string) (string, bool) {
	if dest == "" || strings.HasPrefix(dest, "#") || strings.HasPrefix(dest, "/") {
		return "", false
	}
	u, err := url.Parse(dest)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Path == "" {
		return "", false // absolute URLs stay as goldmark left them
	}
	p := u.Path
	for _, c := range []string{path.Join(nl.dir, p), path.Clean(p), path.Join(nl.dir, p) + ".md", path.Clean(p) + ".md"} {
		if c == ".." || strings.HasPrefix(c, "../") {
			continue
		}
		if _, ok := findFile(nl.snap, c); ok {
			return c, true
		}
	}
	if strings.Contains(p, "/") {
		return "", false
	}
	found := ""
	for _, f := range nl.snap.Files {
		if b := path.Base(f.Path); b == p || b == p+".md" {
			if found != "" {
				return "", false // ambiguous
			}
			found = f.Path
		}
	}
	return found, found != ""
}

// linkTransformer points resolved links at the file page and resolved
// images at the raw route.
type linkTransformer struct{}

func (linkTransformer) Transform(doc *ast.Document, _ text.Reader, pc parser.Context) {
	nl, _ := pc.Get(linksKey).(*noteLinks)
	if nl == nil {
		return
	}
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Image:
			if p, ok := nl.resolve(string(n.Destination)); ok {
				n.Destination = []byte(nl.f.Raw(nl.snap.Seq, p))
			}
		case *ast.Link:
			if p, ok := nl.resolve(string(n.Destination)); ok {
				n.Destination = []byte(nl.f.File(nl.snap.Seq, p))
			}
		}
		return ast.WalkContinue, nil
	})
}

// canvasView is an Obsidian canvas: its cards and arrows listed, and
// drawn as an SVG of boxes and lines (Drawing nil when it has no cards).
type canvasView struct {
	Nodes   []canvasNode
	Edges   []canvasEdge
	Drawing *canvasDrawing
	Err     string
}

type canvasNode struct {
	ID     string  `json:"id"`
	Type   string  `json:"type"`
	Text   string  `json:"text"`
	File   string  `json:"file"`
	URL    string  `json:"url"`
	Label  string  `json:"label"`
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
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
	From     string `json:"fromNode"`
	To       string `json:"toNode"`
	FromSide string `json:"fromSide"`
	ToSide   string `json:"toSide"`
	Label    string `json:"label"`
}

// canvasDrawing is the canvas in SVG coordinates (shifted so that the
// top-left card is at the margin).
type canvasDrawing struct {
	Width, Height float64
	Boxes         []canvasBox
	Lines         []canvasLine
}

type canvasBox struct {
	X, Y, W, H float64
	Group      bool
	Caption    string // the first line, cut to fit
}

type canvasLine struct {
	X1, Y1, X2, Y2 float64
}

const (
	canvasMargin   = 20
	maxCanvasNodes = 2000
)

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
	c.Drawing = drawCanvas(c.Nodes, c.Edges)
	return &c
}

func drawCanvas(nodes []canvasNode, edges []canvasEdge) *canvasDrawing {
	if len(nodes) == 0 || len(nodes) > maxCanvasNodes {
		return nil
	}
	minX, minY, maxX, maxY := nodes[0].X, nodes[0].Y, nodes[0].X, nodes[0].Y
	for _, n := range nodes {
		minX, minY = min(minX, n.X), min(minY, n.Y)
		maxX, maxY = max(maxX, n.X+max(n.Width, 1)), max(maxY, n.Y+max(n.Height, 1))
	}
	d := &canvasDrawing{Width: maxX - minX + 2*canvasMargin, Height: maxY - minY + 2*canvasMargin}
	at := map[string]canvasBox{}
	for _, n := range nodes {
		b := canvasBox{X: n.X - minX + canvasMargin, Y: n.Y - minY + canvasMargin, W: max(n.Width, 1), H: max(n.Height, 1), Group: n.Type == "group"}
		first, _, _ := strings.Cut(strings.TrimSpace(n.What()), "\n")
		if fit := int(b.W / 9); fit >= 1 && len([]rune(first)) > fit {
			first = string([]rune(first)[:max(fit-1, 0)]) + "…"
		}
		b.Caption = first
		d.Boxes = append(d.Boxes, b)
		at[n.ID] = b
	}
	// Groups first, so that the cards inside them are drawn on top.
	slices.SortStableFunc(d.Boxes, func(a, b canvasBox) int {
		switch {
		case a.Group == b.Group:
			return 0
		case a.Group:
			return -1
		}
		return 1
	})
	for _, e := range edges {
		from, ok1 := at[e.From]
		to, ok2 := at[e.To]
		if !ok1 || !ok2 {
			continue
		}
		x1, y1 := side(from, e.FromSide)
		x2, y2 := side(to, e.ToSide)
		d.Lines = append(d.Lines, canvasLine{x1, y1, x2, y2})
	}
	return d
}

// side is the middle of a box's side ("top", "bottom", "left", "right"),
// or its centre.
func side(b canvasBox, s string) (float64, float64) {
	switch s {
	case "top":
		return b.X + b.W/2, b.Y
	case "bottom":
		return b.X + b.W/2, b.Y + b.H
	case "left":
		return b.X, b.Y + b.H/2
	case "right":
		return b.X + b.W, b.Y + b.H/2
	}
	return b.X + b.W/2, b.Y + b.H/2
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
	// num writes an SVG coordinate.
	"num": func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
}
