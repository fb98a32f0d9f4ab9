#!/usr/bin/env node
// decode.mjs — the oracle's reading side: decode v1 updates with real yjs.
//
//   node decode.mjs MANIFEST.json
//
// MANIFEST is [{"file": "x.bin", "roots": {"name": "text"|"map"|"array"}}, ...].
// Prints one JSON array with, per entry, {"file", "roots": {name: value}} where
// values are canonical as in gen-sessions.mjs (Uint8Array -> {"$bytes": b64}).
// The Go tests use it to check that updates made by the Go encoder read back
// in yjs with the content the Go side intended.

import * as Y from 'yjs'
import fs from 'node:fs'

const b64 = (u) => Buffer.from(u).toString('base64')

function canonical (v) {
  if (v instanceof Y.Text) return v.toString()
  if (v instanceof Y.Map) {
    const o = {}
    for (const k of Array.from(v.keys()).sort()) o[k] = canonical(v.get(k))
    return o
  }
  if (v instanceof Y.Array) return v.toArray().map(canonical)
  if (v instanceof Uint8Array) return { $bytes: b64(v) }
  if (Array.isArray(v)) return v.map(canonical)
  if (v !== null && typeof v === 'object') {
    const o = {}
    for (const k of Object.keys(v).sort()) o[k] = canonical(v[k])
    return o
  }
  return v
}

const manifest = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const out = []
for (const { file, roots } of manifest) {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, fs.readFileSync(file))
  const got = {}
  for (const [name, kind] of Object.entries(roots)) {
    const t = kind === 'text' ? doc.getText(name) : kind === 'map' ? doc.getMap(name) : doc.getArray(name)
    got[name] = canonical(t)
  }
  out.push({ file, roots: got })
}
process.stdout.write(JSON.stringify(out))
