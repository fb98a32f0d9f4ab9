package relay

import (
	"slices"
	"strings"
)

// Root type names of a canvas document (§4.3).
const (
	CanvasNodesKey = "nodes"
	CanvasEdgesKey = "edges"
)

// RootTextFunc looks up a root-level Y.Text of a document by name and
// returns its string content; ok is false when the document has no root
// Y.Text of that name (absent, or a root of another type).
type RootTextFunc func(name string) (text string, ok bool)

// ExportCanvas renders a canvas document as the Python implementation
// wrote it to git (§4.3): json.dumps({"edges": [...], "nodes": [...]},
// indent=2, sort_keys=True), byte for byte where the Python succeeded.
//
// nodes and edges are the decoded root Y.Maps "nodes" and "edges" (nil when
// the document lacks them), their values objects (nested Y.Maps already
// converted to map[string]any, Y.Texts to strings). rootText may be nil.
//
// Rules:
//  1. every edge and node object is taken in map-key order, then each list
//     is stably sorted by its "id" (a missing or non-string id sorts as "");
//  2. for a node with "type" == "text" and a non-empty string "id" naming a
//     root Y.Text, "text" becomes that Y.Text's content; when the Y.Text is
//     empty, the node's own "text" is kept, or set to "" if it had none;
//  3. values that are not objects are skipped.
//
// Differences from the Python, all in cases where the Python output is not
// plugin data:
//   - Rule 2 is applied to text nodes only, as the plugin does. The Python
//     (§10 item 13) applies it to any node whose id names a root type of
//     the document. The plugin creates a root Y.Text only for text nodes,
//     so the bytes differ only for a non-text node whose id still names a
//     root Y.Text (e.g. a text node whose type was later changed): the
//     Python gave such a node a "text" field, we leave the node as stored.
//     Output for text nodes is identical.
//   - Python fails the whole export (no file written) on a non-object
//     value (AttributeError in the sort), a mix of string and non-string
//     ids, or binary values; we skip non-object values, sort non-string
//     ids as "", and write binaries as base64 strings (see MarshalPyJSON).
//
// The result has no trailing newline; its SHA-256 is the Python's
// document hash for the canvas.
func ExportCanvas(nodes, edges map[string]any, rootText RootTextFunc) ([]byte, error) {
	out := map[string]any{
		CanvasEdgesKey: canvasList(edges, nil),
		CanvasNodesKey: canvasList(nodes, func(node map[string]any) {
			if rootText == nil {
				return
			}
			if typ, _ := node["type"].(string); typ != "text" {
				return
			}
			id, _ := node["id"].(string)
			if id == "" {
				return
			}
			text, ok := rootText(id)
			if !ok {
				return
			}
			if text != "" {
				node["text"] = text
			} else if _, has := node["text"]; !has {
				node["text"] = ""
			}
		}),
	}
	return MarshalPyJSON(out, 2)
}

// canvasList copies the object values of m in key order, applies fix to
// each copy, and stably sorts the result by "id".
func canvasList(m map[string]any, fix func(map[string]any)) []any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	list := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		obj, ok := m[k].(map[string]any)
		if !ok {
			continue
		}
		cp := make(map[string]any, len(obj)+1)
		for k, v := range obj {
			cp[k] = v
		}
		if fix != nil {
			fix(cp)
		}
		list = append(list, cp)
	}
	slices.SortStableFunc(list, func(a, b map[string]any) int {
		ia, _ := a["id"].(string)
		ib, _ := b["id"].(string)
		return strings.Compare(ia, ib)
	})
	out := make([]any, len(list))
	for i, v := range list {
		out[i] = v
	}
	return out
}
