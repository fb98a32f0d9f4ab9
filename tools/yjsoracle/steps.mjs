#!/usr/bin/env node
// steps.mjs — run scripted steps on real yjs documents, so that Go tests can
// hand updates back and forth with yjs (write-back: Go reads yjs's state,
// edits, and yjs applies what Go wrote).
//
//   node steps.mjs JOBS.json
//
// JOBS is [{"steps": [STEP, ...]}, ...]. Each job has its own named docs.
// Prints one JSON array with, per job, {"out": {NAME: value}} (values of the
// "text" and "map" steps). Exits 1 with the job and step on any error.
//
// Steps ("doc" names a document of the job, "root" a root type name):
//   {"op":"new", "doc", "client", "gc"}        new Y.Doc({gc}) with that clientID
//   {"op":"history", "doc", "root", "text", "seed", "clients", "chunk"}
//        make the root text hold exactly "text" through a history: "clients"
//        writers (the doc and clients-1 others, ids from "seed") type it in
//        pieces of up to "chunk" code points, type junk (emoji, CJK, ASCII)
//        between and inside pieces and delete it again, so the document holds
//        deleted (and with gc, collected) items between live ones; some
//        writers also set and delete a nested Y.Text in the root map
//        "_scratch", whose items (with gc) become GC structs
//   {"op":"insert", "doc", "root", "index", "text"}   Y.Text insert (UTF-16 index)
//   {"op":"delete", "doc", "root", "index", "len"}    Y.Text delete
//   {"op":"mapSet", "doc", "root", "key", "value"}    Y.Map set of a JSON value
//   {"op":"mapDelete", "doc", "root", "key"}
//   {"op":"apply", "doc", "file"}                     Y.applyUpdate of a v1 update
//   {"op":"saveState", "doc", "file"}                 Y.encodeStateAsUpdate(doc)
//   {"op":"saveSV", "doc", "file"}                    Y.encodeStateVector(doc)
//   {"op":"saveDiff", "doc", "sv", "file"}            Y.encodeStateAsUpdate(doc, sv file)
//   {"op":"text", "doc", "root", "name"}              out[name] = text.toString()
//   {"op":"map", "doc", "root", "name"}               out[name] = canonical map
//   {"op":"pending", "doc", "name"}                   out[name] = whether structs or
//                                                     deletions wait for missing updates
// Every step is deterministic: random choices come from "seed" (mulberry32).

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

function mulberry32 (a) {
  return function () {
    a |= 0
    a = (a + 0x6D2B79F5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const JUNK = ['z', 'junk ', '😀', '👍🏽', '漢字', '\n', 'é', '𝄞']

function history (doc, root, target, seed, nClients, chunk) {
  const rnd = mulberry32(seed)
  const int = (n) => Math.floor(rnd() * n)
  const docs = [doc]
  for (let i = 1; i < nClients; i++) {
    const o = new Y.Doc({ gc: doc.gc })
    o.clientID = 1 + int(0xfffffffe)
    Y.applyUpdate(o, Y.encodeStateAsUpdate(doc))
    docs.push(o)
  }
  // Every update goes to every other writer at once, so all stay equal.
  const handlers = docs.map((d) => {
    const h = (u, origin) => {
      if (origin === 'history-sync') return
      for (const o of docs) if (o !== d) Y.applyUpdate(o, u, 'history-sync')
    }
    d.on('update', h)
    return h
  })
  const cps = Array.from(target)
  let next = 0
  const pieces = [] // {s, junk} in document order
  const offset = (k) => { let n = 0; for (let i = 0; i < k; i++) n += pieces[i].s.length; return n }
  const text = () => docs[int(docs.length)].getText(root)
  while (next < cps.length || pieces.some((p) => p.junk)) {
    const op = int(4)
    if (op < 2 && next < cps.length) {
      const n = 1 + int(chunk)
      const s = cps.slice(next, next + n).join('')
      next += n
      const t = text()
      t.insert(t.length, s)
      pieces.push({ s, junk: false })
    } else if (op === 2) {
      let k = int(pieces.length + 1)
      const j = JUNK[int(JUNK.length)]
      // Sometimes inside a piece, at a code point boundary.
      if (k < pieces.length && !pieces[k].junk && rnd() < 0.5) {
        const p = Array.from(pieces[k].s)
        if (p.length > 1) {
          const at = 1 + int(p.length - 1)
          pieces.splice(k, 1, { s: p.slice(0, at).join(''), junk: false }, { s: p.slice(at).join(''), junk: false })
          k++
        }
      }
      text().insert(offset(k), j)
      pieces.splice(k, 0, { s: j, junk: true })
    } else if (op === 3 && rnd() < 0.2) {
      // A nested text set and deleted in another root: its items become
      // GC structs (with gc) in the writer's clock range.
      const d = docs[int(docs.length)]
      const m = d.getMap('_scratch')
      d.transact(() => m.set('tmp', new Y.Text(JUNK[int(JUNK.length)] + 'scratch')))
      m.delete('tmp')
    } else {
      const k = pieces.findIndex((p) => p.junk)
      if (k >= 0) {
        text().delete(offset(k), pieces[k].s.length)
        pieces.splice(k, 1)
      }
    }
  }
  docs.forEach((d, i) => d.off('update', handlers[i]))
  const got = doc.getText(root).toString()
  if (got !== target) throw new Error(`history built ${JSON.stringify(got.slice(0, 200))}, want ${JSON.stringify(target.slice(0, 200))}`)
}

function run (job) {
  const docs = {}
  const out = {}
  const doc = (name) => {
    if (!docs[name]) throw new Error(`no doc ${name}`)
    return docs[name]
  }
  for (const [i, s] of job.steps.entries()) {
    try {
      switch (s.op) {
        case 'new': {
          const d = new Y.Doc({ gc: s.gc !== false })
          if (s.client !== undefined) d.clientID = s.client
          docs[s.doc] = d
          break
        }
        case 'history':
          history(doc(s.doc), s.root, s.text, s.seed ?? 1, s.clients ?? 1, s.chunk ?? 8)
          break
        case 'insert': doc(s.doc).getText(s.root).insert(s.index, s.text); break
        case 'delete': doc(s.doc).getText(s.root).delete(s.index, s.len); break
        case 'mapSet': doc(s.doc).getMap(s.root).set(s.key, s.value); break
        case 'mapDelete': doc(s.doc).getMap(s.root).delete(s.key); break
        case 'apply': Y.applyUpdate(doc(s.doc), fs.readFileSync(s.file)); break
        case 'saveState': fs.writeFileSync(s.file, Y.encodeStateAsUpdate(doc(s.doc))); break
        case 'saveSV': fs.writeFileSync(s.file, Y.encodeStateVector(doc(s.doc))); break
        case 'saveDiff': fs.writeFileSync(s.file, Y.encodeStateAsUpdate(doc(s.doc), fs.readFileSync(s.sv))); break
        case 'text': out[s.name] = doc(s.doc).getText(s.root).toString(); break
        case 'map': out[s.name] = canonical(doc(s.doc).getMap(s.root)); break
        case 'pending': {
          const st = doc(s.doc).store
          out[s.name] = st.pendingStructs !== null || st.pendingDs !== null
          break
        }
        default: throw new Error(`unknown op ${s.op}`)
      }
    } catch (e) {
      e.message = `step ${i} (${s.op}): ${e.message}`
      throw e
    }
  }
  return { out }
}

const jobs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const results = []
for (const [i, job] of jobs.entries()) {
  try {
    results.push(run(job))
  } catch (e) {
    console.error(`steps: job ${i}: ${e.stack}`)
    process.exit(1)
  }
}
process.stdout.write(JSON.stringify(results))
