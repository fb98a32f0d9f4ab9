package writeback

import (
	"encoding/json"
	"fmt"

	"github.com/relay-git-sync/relay-git-sync/internal/relay"
	"github.com/relay-git-sync/relay-git-sync/internal/yjs"
)

// applyCanvas edits a canvas document so that relay.ExportCanvas of it
// gives data (a canvas as exported): node and edge entries set or deleted
// key by key (keyed by their id, as the plugin keys them), a text node's
// text diffed into its root Y.Text. It returns how many keys changed.
func applyCanvas(doc *yjs.Doc, data []byte) (int, error) {
	var want struct {
		Nodes []map[string]any `json:"nodes"`
		Edges []map[string]any `json:"edges"`
	}
	if err := json.Unmarshal(data, &want); err != nil {
		return 0, fmt.Errorf("not a canvas (JSON with nodes and edges): %w", err)
	}
	n, err := applyCanvasMap(doc, relay.CanvasNodesKey, want.Nodes, true)
	if err != nil {
		return n, err
	}
	m, err := applyCanvasMap(doc, relay.CanvasEdgesKey, want.Edges, false)
	return n + m, err
}

func applyCanvasMap(doc *yjs.Doc, root string, want []map[string]any, nodes bool) (int, error) {
	m := doc.GetMap(root)
	cur, _ := m.ToJSON().(map[string]any)
	changed := 0
	keep := map[string]bool{}
	for _, obj := range want {
		id, _ := obj["id"].(string)
		if id == "" {
			return changed, fmt.Errorf("a canvas %s entry without an id", root)
		}
		keep[id] = true
		old, _ := cur[id].(map[string]any)
		ignoreText := false
		if typ, _ := obj["type"].(string); nodes && typ == "text" {
			text, _ := obj["text"].(string)
			t := doc.Root(id)
			if t == nil || t.Kind() == yjs.KindText {
				t = doc.GetText(id)
				if t.String() != text {
					if err := t.ApplyDiff(text); err != nil {
						return changed, fmt.Errorf("canvas node %s: %w", id, err)
					}
					changed++
				}
				// The export takes a non-empty root text over the node's own.
				ignoreText = text != ""
			}
		}
		if old != nil && sameJSON(old, obj, ignoreText) {
			continue
		}
		if err := m.Set(id, obj); err != nil {
			return changed, fmt.Errorf("canvas %s %s: %w", root, id, err)
		}
		changed++
	}
	for k := range cur {
		if !keep[k] {
			m.DeleteKey(k)
			changed++
		}
	}
	return changed, nil
}

// sameJSON compares two JSON objects (numbers compare by value), leaving
// out "text" when ignoreText.
func sameJSON(a, b map[string]any, ignoreText bool) bool {
	enc := func(m map[string]any) string {
		if ignoreText {
			c := make(map[string]any, len(m))
			for k, v := range m {
				if k != "text" {
					c[k] = v
				}
			}
			m = c
		}
		out, err := json.Marshal(m)
		if err != nil {
			return fmt.Sprint(m)
		}
		return string(out)
	}
	return enc(a) == enc(b)
}
