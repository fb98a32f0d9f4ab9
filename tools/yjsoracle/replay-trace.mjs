#!/usr/bin/env node
// replay-trace.mjs — replay an editing trace (Joseph Gentle's editing-traces
// format, CC BY 4.0) into the real `yjs` package and write the final document.
//
//   node replay-trace.mjs TRACE.json[.gz] OUT.bin [--gc=false]
//
// Writes OUT.bin (Y.encodeStateAsUpdate of the final doc: a v1 full-state
// update whose root Y.Text "text" holds the document) and OUT.bin.json
// ({"endContent": ..., "root": "text", ...}). Prints one JSON summary line on
// stdout. Exits non-zero if the replayed text differs from the trace's
// endContent.

import * as Y from 'yjs'
import fs from 'node:fs'
import zlib from 'node:zlib'

const ROOT = 'text'

function die (msg, code = 1) {
  console.error(`replay-trace: ${msg}`)
  process.exit(code)
}

function parseArgs (argv) {
  const pos = []
  let gc = true
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--gc=false' || a === '--no-gc') gc = false
    else if (a === '--gc=true' || a === '--gc') gc = true
    else if (a.startsWith('--')) die(`unknown option ${a}`, 2)
    else pos.push(a)
  }
  if (pos.length !== 2) die('usage: node replay-trace.mjs TRACE.json.gz OUT.bin [--gc=false]', 2)
  return { trace: pos[0], out: pos[1], gc }
}

function loadTrace (file) {
  let buf = fs.readFileSync(file)
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf)
  return JSON.parse(buf.toString('utf8'))
}

const hasSurrogates = (s) => /[\uD800-\uDFFF]/.test(s)

function cpLength (s) {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (!(c >= 0xdc00 && c <= 0xdfff && i > 0 && (s.charCodeAt(i - 1) & 0xfc00) === 0xd800)) n++
  }
  return n
}

/** UTF-16 offset of code point index cp in s (s is the current content). */
function cpToUnit (s, cp) {
  let u = 0
  for (let i = 0; i < cp; i++) {
    if (u >= s.length) die(`code point position ${cp} beyond document end`)
    const c = s.charCodeAt(u)
    u += (c >= 0xd800 && c <= 0xdbff && u + 1 < s.length) ? 2 : 1
  }
  return u
}

/**
 * Tracks the code-point positions of astral characters in a document so that
 * code-point positions convert to UTF-16 offsets in O(#astral) instead of
 * O(document) per patch. With no astral characters it is the identity.
 */
class AstralIndex {
  constructor (s) { this.pos = []; this.add(0, s) }
  toUnit (cp) {
    let n = 0
    for (const p of this.pos) { if (p < cp) n++; else break }
    return cp + n
  }

  /** astral positions of str inserted at code point cp */
  add (cp, str) {
    const len = cpLength(str)
    const fresh = []
    let i = 0
    for (let u = 0; u < str.length; i++) {
      const c = str.charCodeAt(u)
      if (c >= 0xd800 && c <= 0xdbff && u + 1 < str.length) { fresh.push(cp + i); u += 2 } else u++
    }
    if (len === 0) return
    const before = this.pos.filter((p) => p < cp)
    const after = this.pos.filter((p) => p >= cp).map((p) => p + len)
    this.pos = before.concat(fresh, after)
  }

  remove (cp, n) {
    if (n === 0 || this.pos.length === 0) return
    this.pos = this.pos.filter((p) => p < cp || p >= cp + n).map((p) => (p >= cp + n ? p - n : p))
  }
}

function replaySequential (trace, gc) {
  const doc = new Y.Doc({ gc })
  doc.clientID = 1
  const text = doc.getText(ROOT)
  const start = trace.startContent || ''
  const idx = new AstralIndex(start)
  if (start.length) doc.transact(() => text.insert(0, start))
  let patches = 0
  for (const txn of trace.txns) {
    doc.transact(() => {
      for (const [pos, del, ins] of txn.patches) {
        const at = idx.toUnit(pos)
        if (del > 0) {
          const end = idx.toUnit(pos + del)
          text.delete(at, end - at)
          idx.remove(pos, del)
        }
        if (ins && ins.length) {
          text.insert(at, ins)
          idx.add(pos, ins)
        }
        patches++
      }
    })
  }
  return { doc, patches, clients: 1, forks: 0 }
}

function replayConcurrent (trace, gc) {
  const txns = trace.txns
  const n = txns.length
  const numAgents = trace.numAgents ?? (1 + Math.max(0, ...txns.map((t) => t.agent)))
  // fast path: no astral characters anywhere -> code points == UTF-16 units
  const astral = txns.some((t) => t.patches.some((p) => p[2] && hasSurrogates(p[2])))

  const updates = new Array(n).fill(null)
  const makeDoc = (clientID) => {
    const d = new Y.Doc({ gc })
    d.clientID = clientID
    const st = { doc: d, text: d.getText(ROOT), has: new Uint8Array(n), last: -1, capture: null }
    d.on('update', (u) => { if (st.capture !== null) updates[st.capture] = u })
    allDocs.push(d)
    return st
  }
  const agents = []
  const allDocs = []
  for (let a = 0; a < numAgents; a++) agents.push(makeDoc(a + 1))
  let nextClientID = numAgents + 1
  let forks = 0
  let patches = 0

  /** is txn `anc` an ancestor of (or equal to) txn `j`'s parents set? */
  const isAncestor = (anc, parents) => {
    const stack = parents.filter((p) => p >= anc)
    const seen = new Set()
    while (stack.length) {
      const x = stack.pop()
      if (x === anc) return true
      if (seen.has(x)) continue
      seen.add(x)
      for (const p of txns[x].parents) if (p >= anc && !seen.has(p)) stack.push(p)
    }
    return false
  }

  /** apply to st every transitive parent of `parents` it lacks, in index (causal) order */
  const catchUp = (st, parents) => {
    const missing = []
    const stack = parents.slice()
    const seen = new Set()
    while (stack.length) {
      const x = stack.pop()
      if (st.has[x] || seen.has(x)) continue
      seen.add(x)
      missing.push(x)
      for (const p of txns[x].parents) if (!st.has[p] && !seen.has(p)) stack.push(p)
    }
    missing.sort((a, b) => a - b)
    for (const x of missing) {
      if (updates[x] !== null) Y.applyUpdate(st.doc, updates[x], 'remote')
      st.has[x] = 1
    }
  }

  for (let j = 0; j < n; j++) {
    const txn = txns[j]
    for (const p of txn.parents) if (!(p < j)) die(`txn ${j}: parent ${p} is not earlier in the trace`)
    let st = agents[txn.agent]
    // The agent's doc must hold exactly the causal past of j. It holds the past
    // of its previous txn; if that txn is not an ancestor of j, fork a fresh doc
    // (with a fresh clientID) holding only j's past.
    if (st.last >= 0 && !isAncestor(st.last, txn.parents)) {
      st = makeDoc(nextClientID++)
      agents[txn.agent] = st
      forks++
    }
    catchUp(st, txn.parents)
    st.capture = j
    st.doc.transact(() => {
      let s = astral ? st.text.toString() : null
      for (const [pos, del, ins] of txn.patches) {
        const at = astral ? cpToUnit(s, pos) : pos
        if (del > 0) {
          const end = astral ? cpToUnit(s, pos + del) : pos + del
          st.text.delete(at, end - at)
        }
        if (ins && ins.length) st.text.insert(at, ins)
        if (astral) s = st.text.toString()
        patches++
      }
    })
    st.capture = null
    st.has[j] = 1
    st.last = j
  }

  // merge everything into one fresh doc (applying each doc's full state;
  // Y.mergeUpdates over ~25k small updates is quadratic and takes minutes)
  const doc = new Y.Doc({ gc })
  doc.clientID = 0x7fffffff
  for (const d of allDocs) Y.applyUpdate(doc, Y.encodeStateAsUpdate(d, Y.encodeStateVector(doc)))
  if (doc.store.pendingStructs !== null || doc.store.pendingDs !== null) die('merged updates leave pending structs (missing dependencies)')
  return { doc, patches, clients: nextClientID - 1, forks }
}

const { trace: traceFile, out, gc } = parseArgs(process.argv.slice(2))
const t0 = process.hrtime.bigint()
const trace = loadTrace(traceFile)
const t1 = process.hrtime.bigint()
const kind = trace.kind === 'concurrent' ? 'concurrent' : 'sequential'
const { doc, patches, clients, forks } = kind === 'concurrent' ? replayConcurrent(trace, gc) : replaySequential(trace, gc)
const t2 = process.hrtime.bigint()
const got = doc.getText(ROOT).toString()
if (got !== trace.endContent) {
  let i = 0
  while (i < got.length && got[i] === trace.endContent[i]) i++
  die(`${traceFile}: replayed content differs from endContent (lengths ${got.length} vs ${trace.endContent.length}, first difference at UTF-16 offset ${i}: ${JSON.stringify(got.slice(i, i + 40))} vs ${JSON.stringify(trace.endContent.slice(i, i + 40))})`)
}
const update = Y.encodeStateAsUpdate(doc)
// sanity: the written update alone reproduces the content
{
  const check = new Y.Doc({ gc })
  Y.applyUpdate(check, update)
  if (check.getText(ROOT).toString() !== trace.endContent) die('encoded update does not reproduce endContent')
}
fs.writeFileSync(out, update)
fs.writeFileSync(out + '.json', JSON.stringify({
  endContent: trace.endContent,
  root: ROOT,
  kind,
  gc,
  txns: trace.txns.length,
  patches,
  clients,
  bytes: update.length
}) + '\n')
const t3 = process.hrtime.bigint()
console.log(JSON.stringify({
  trace: traceFile,
  out,
  kind,
  gc,
  txns: trace.txns.length,
  patches,
  clients,
  forks,
  bytes: update.length,
  load_ms: Math.round(Number(t1 - t0) / 1e6),
  replay_ms: Math.round(Number(t2 - t1) / 1e6),
  total_ms: Math.round(Number(t3 - t0) / 1e6)
}))
