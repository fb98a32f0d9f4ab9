package yjs

import (
	"fmt"
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// ApplyDiff turns the text's content into newText with the insertions and
// deletions diff-match-patch finds between them, as the Relay plugin's
// diffMatchPatch (src/y-diffMatchPatch.ts) does: diff_main with line
// mode, then diff_cleanupSemantic, applied in order at UTF-16 offsets.
// Unchanged text keeps its items, so concurrent edits next to it merge as
// in yjs. The diff is computed on code points: no insertion or deletion
// starts or ends inside a surrogate pair. An equal text changes nothing.
//
// newText must be valid UTF-8. A text holding embeds (which String leaves
// out) is refused. Errors leave the document partly edited: discard it.
func (t *Type) ApplyDiff(newText string) error {
	if t.doc == nil {
		return errDetached
	}
	if t.kind != KindText {
		return fmt.Errorf("yjs: ApplyDiff on a %s, want a text", t.kind)
	}
	if !utf8.ValidString(newText) {
		return fmt.Errorf("yjs: new text is not valid UTF-8; decode it to Unicode first")
	}
	old := t.String()
	if utf16Len(old) != t.length {
		return fmt.Errorf("yjs: text holds %d embedded elements besides its characters; ApplyDiff edits plain text only", t.length-utf16Len(old))
	}
	if old == newText {
		return nil
	}
	dmp := diffmatchpatch.New()
	diffs := dmp.DiffCleanupSemantic(dmp.DiffMain(old, newText, true))
	// The diff is the edit script; a wrong one would corrupt the note.
	if dmp.DiffText1(diffs) != old || dmp.DiffText2(diffs) != newText {
		return fmt.Errorf("yjs: diff-match-patch gave a diff that does not turn the old text into the new one")
	}
	// One walk along the items: each operation starts where the last ended.
	defer t.local()()
	c := textCursor{t: t, right: t.start}
	for _, df := range diffs {
		n := utf16Len(df.Text)
		if n == 0 { // diff-match-patch's cleanup can leave empty operations
			continue
		}
		var err error
		switch df.Type {
		case diffmatchpatch.DiffEqual:
			err = c.forward(n)
		case diffmatchpatch.DiffInsert:
			err = c.insert(df.Text)
		case diffmatchpatch.DiffDelete:
			err = c.delete(n)
		}
		if err != nil {
			return err
		}
	}
	if got := t.String(); got != newText {
		return fmt.Errorf("yjs: text after applying the diff differs from the new text (%d against %d bytes)", len(got), len(newText))
	}
	return nil
}

// textCursor is a position in a text between the items left and right, as
// Insert and Delete find it, moved forward by one edit after the other.
type textCursor struct {
	t           *Type
	left, right *item
}

// forward moves past n live UTF-16 units, splitting the item it stops in.
func (c *textCursor) forward(n uint64) error {
	for n > 0 {
		r := c.right
		if r == nil {
			return fmt.Errorf("yjs: text ends %d units before the diff's position", n)
		}
		if !r.deleted && r.countable() {
			if n < r.length {
				right, err := c.t.doc.store.cleanStart(ID{r.id.Client, r.id.Clock + n})
				if err != nil {
					return err
				}
				c.left, c.right = r, right
				return nil
			}
			n -= r.length
		}
		c.left, c.right = r, r.right
	}
	return nil
}

// insert inserts s past the deleted items at the cursor, as Insert does,
// and moves the cursor past it.
func (c *textCursor) insert(s string) error {
	for c.right != nil && c.right.deleted {
		c.left, c.right = c.right, c.right.right
	}
	it, err := c.t.insertAfter(c.left, c.right, newContentString(s))
	if err != nil {
		return err
	}
	c.left, c.right = it, it.right
	return nil
}

// delete deletes n live UTF-16 units at the cursor, as Delete does; the
// cursor stays before them.
func (c *textCursor) delete(n uint64) error {
	d := c.t.doc
	for it := c.right; it != nil && n > 0; it = it.right {
		if it.deleted || !it.countable() {
			continue
		}
		if n < it.length {
			if _, err := d.store.cleanStart(ID{it.id.Client, it.id.Clock + n}); err != nil {
				return err
			}
		}
		n -= it.length
		d.deleteItem(it)
		d.collect(it)
	}
	if n > 0 {
		return fmt.Errorf("yjs: text ends %d units before the end of the diff's deletion", n)
	}
	return nil
}
