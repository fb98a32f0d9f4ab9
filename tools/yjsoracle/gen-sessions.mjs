#!/usr/bin/env node
// gen-sessions.mjs — generate random multi-client Yjs editing sessions with the
// real `yjs` package, as an oracle for the Go decoder's differential tests.
//
//   node gen-sessions.mjs --seed S --count N --out DIR
//
// For every session i in [0, N) writes DIR/session-<S>-<i>.bin (a v1 full-state
// update of client 0) and DIR/session-<S>-<i>.json (expected content plus the
// update stream). Output depends only on S and i: the PRNG is mulberry32, all
// client IDs come from it, and Math.random is never consulted for content.
// See README.md for the exact JSON format.

import * as Y from 'yjs'
import fs from 'node:fs'
import path from 'node:path'

// ---------------------------------------------------------------- CLI

function usage (msg) {
  if (msg) console.error(`gen-sessions: ${msg}`)
  console.error('usage: node gen-sessions.mjs --seed S --count N --out DIR')
  process.exit(2)
}

function parseArgs (argv) {
  const opts = {}
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]
    let v
    const eq = a.indexOf('=')
    if (a.startsWith('--') && eq > 0) { v = a.slice(eq + 1); a = a.slice(0, eq) }
    const take = () => {
      if (v !== undefined) return v
      if (i + 1 >= argv.length) usage(`missing value for ${a}`)
      return argv[++i]
    }
    switch (a) {
      case '--seed': opts.seed = take(); break
      case '--count': opts.count = take(); break
      case '--out': opts.out = take(); break
      case '-h': case '--help': usage()
      // falls through
      default: usage(`unknown argument ${a}`)
    }
  }
  if (opts.seed === undefined || opts.count === undefined || opts.out === undefined) usage('--seed, --count and --out are required')
  if (!/^[A-Za-z0-9_-]+$/.test(opts.seed)) usage('--seed must match [A-Za-z0-9_-]+ (it is used in file names)')
  const count = Number(opts.count)
  if (!Number.isInteger(count) || count < 0) usage('--count must be a non-negative integer')
  return { seed: opts.seed, count, out: opts.out }
}

// ---------------------------------------------------------------- PRNG

// xmur3 string hash -> 32-bit seed (so any seed string, and (seed, index), maps
// to an independent stream).
function hashSeed (str) {
  let h = 1779033703 ^ str.length
  for (let i = 0; i < str.length; i++) {
    h = Math.imul(h ^ str.charCodeAt(i), 3432918353)
    h = (h << 13) | (h >>> 19)
  }
  h = Math.imul(h ^ (h >>> 16), 2246822507)
  h = Math.imul(h ^ (h >>> 13), 3266489909)
  return (h ^ (h >>> 16)) >>> 0
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

class Rng {
  constructor (seed) { this.f = mulberry32(seed) }
  float () { return this.f() }
  /** integer in [lo, hi] inclusive */
  int (lo, hi) { return lo + Math.floor(this.f() * (hi - lo + 1)) }
  chance (p) { return this.f() < p }
  pick (arr) { return arr[Math.floor(this.f() * arr.length)] }
  /** pairs: [[weight, value], ...] */
  weighted (pairs) {
    let total = 0
    for (const [w] of pairs) total += w
    let x = this.f() * total
    for (const [w, v] of pairs) { if ((x -= w) < 0) return v }
    return pairs[pairs.length - 1][1]
  }
  shuffle (arr) {
    const a = arr.slice()
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.f() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]]
    }
    return a
  }
  /** small-biased length: mostly short, sometimes long */
  len (max) {
    if (max <= 0) return 0
    const l = this.weighted([[60, this.int(1, 3)], [30, this.int(1, 12)], [10, this.int(1, 60)]])
    return Math.min(l, max)
  }
}

// ---------------------------------------------------------------- content pools

const ASCII_WORDS = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'relay', 'git', 'sync', 'hello', 'world', 'a', 'I', 'yjs', 'CRDT', '42', 'foo_bar', '#', '- [ ] todo', '**bold**', '`code`']
const ASCII_PUNCT = [' ', ' ', ' ', ',', '.', '!', '?', ';', ':', '-', '(', ')', '"', "'", '/', '\\', '\t', '{', '}', '<', '>']
const EMOJI = ['😀', '👍🏽', '🎉', '👨‍👩‍👧', '🇩🇪', '🦀', '𝔘𝔫𝔦', '💩', '❤️']
const COMBINING = ['e\u0301', 'a\u0308', 'n\u0303', 'o\u0302\u0323', 'Z\u0351\u036b']
const CJK = ['漢字', '日本語', '中文', '한국어', 'かな', '字']
const OTHER = ['é', 'ß', 'Ω', '€', 'Ж', 'ñ', '\u00a0', 'ﬁ', 'İ']
const MAP_KEYS = ['a', 'b', 'c', 'title', 'count', 'k1', 'k2', 'nested', 'list', '', 'ключ', '😀', 'with space', 'x.y', '0', '123']

function randFragment (r) {
  switch (r.weighted([[40, 'word'], [20, 'punct'], [8, 'newline'], [8, 'emoji'], [6, 'comb'], [8, 'cjk'], [5, 'other'], [5, 'letters']])) {
    case 'word': return r.pick(ASCII_WORDS)
    case 'punct': return r.pick(ASCII_PUNCT)
    case 'newline': return r.chance(0.8) ? '\n' : '\n\n'
    case 'emoji': return r.pick(EMOJI)
    case 'comb': return r.pick(COMBINING)
    case 'cjk': return r.pick(CJK)
    case 'other': return r.pick(OTHER)
    default: {
      let s = ''
      const n = r.int(1, 8)
      for (let i = 0; i < n; i++) s += String.fromCharCode(r.int(97, 122))
      return s
    }
  }
}

function randText (r) {
  // occasionally a "paste" of a longer chunk
  const n = r.chance(0.08) ? r.int(10, 60) : r.int(1, 4)
  let s = ''
  for (let i = 0; i < n; i++) s += randFragment(r)
  return s
}

function typedChar (r) {
  return r.weighted([
    [70, String.fromCharCode(r.int(97, 122))],
    [15, ' '],
    [3, '\n'],
    [3, r.pick(['.', ',', '!'])],
    [3, r.pick(EMOJI)],
    [3, r.pick(CJK).charAt(0)],
    [3, r.pick(COMBINING)]
  ])
}

function randNumber (r) {
  return r.weighted([
    [30, r.int(-100, 100)],
    [10, r.int(0, 1000000)],
    [5, -r.int(1, 1000000)],
    [5, r.pick([2147483647, -2147483647, 2147483648, -2147483648, 2 ** 40, -(2 ** 40), 2 ** 53 - 1, -(2 ** 53 - 1), 4294967295, 1e21])],
    [10, r.pick([1.5, -0.25, 0.5, 1e-7, 3.14159, 0.1, -123.456, 1e100, 6.02e23, 2.5e-300])],
    [5, Math.round(r.float() * 1e6) / 1000]
  ])
}

function randString (r) {
  return r.weighted([[10, ''], [60, randText(r)], [30, r.pick(ASCII_WORDS)]])
}

function randBytes (r) {
  const n = r.weighted([[10, 0], [70, r.int(1, 16)], [20, r.int(17, 300)]])
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = r.int(0, 255)
  return b
}

function randJSON (r, depth = 0) {
  const kinds = [[30, 'num'], [30, 'str'], [8, 'bool'], [6, 'null']]
  if (depth < 3) kinds.push([10, 'obj'], [10, 'arr'])
  if (depth > 0) kinds.push([1, 'bytes']) // Uint8Array inside an Any value (lib0 writeAny type 116)
  switch (r.weighted(kinds)) {
    case 'num': return randNumber(r)
    case 'str': return randString(r)
    case 'bool': return r.chance(0.5)
    case 'null': return null
    case 'bytes': return randBytes(r)
    case 'obj': {
      const o = {}
      const n = r.int(0, 4)
      for (let i = 0; i < n; i++) o[r.pick(MAP_KEYS)] = randJSON(r, depth + 1)
      return o
    }
    default: {
      const a = []
      const n = r.int(0, 4)
      for (let i = 0; i < n; i++) a.push(randJSON(r, depth + 1))
      return a
    }
  }
}

// ---------------------------------------------------------------- canonical JSON

function b64 (u8) { return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('base64') }

function canonical (v) {
  if (v instanceof Y.Text) return v.toString()
  if (v instanceof Y.Map) {
    const o = {}
    for (const k of Array.from(v.keys()).sort()) o[k] = canonical(v.get(k))
    return o
  }
  if (v instanceof Y.Array) return v.toArray().map(canonical)
  if (v instanceof Y.AbstractType) throw new Error(`unexpected Y type ${v.constructor.name}`)
  if (v instanceof Uint8Array) return { $bytes: b64(v) }
  if (Array.isArray(v)) return v.map(canonical)
  if (v === null) return null
  switch (typeof v) {
    case 'string': case 'boolean': return v
    case 'number':
      if (!Number.isFinite(v) || Object.is(v, -0)) throw new Error(`non-JSON number ${v}`)
      return v
    case 'object': {
      const o = {}
      for (const k of Object.keys(v).sort()) o[k] = canonical(v[k])
      return o
    }
    default: throw new Error(`non-JSON value of type ${typeof v}`)
  }
}

// ---------------------------------------------------------------- roots & paths

const ROOT_KINDS = { text: 'text', notes: 'text', map: 'map', array: 'array' }

function getRoot (doc, name) {
  switch (ROOT_KINDS[name]) {
    case 'text': return doc.getText(name)
    case 'map': return doc.getMap(name)
    case 'array': return doc.getArray(name)
  }
  throw new Error(`unknown root ${name}`)
}

function rootsJSON (doc, names) {
  const o = {}
  for (const n of names) o[n] = canonical(getRoot(doc, n))
  return o
}

/** A root exists in the encoded document once anything was ever inserted into it. */
function rootWasWritten (doc, name) {
  const t = getRoot(doc, name)
  return t._start !== null || t._map.size > 0
}

/** All live (non-deleted) shared types reachable from the roots, with their paths. */
function collectTypes (doc, rootNames) {
  const out = []
  const walk = (t, p) => {
    out.push({ type: t, path: p })
    if (t instanceof Y.Map) {
      for (const k of Array.from(t.keys()).sort()) {
        const v = t.get(k)
        if (v instanceof Y.AbstractType) walk(v, p.concat([k]))
      }
    } else if (t instanceof Y.Array) {
      const arr = t.toArray()
      for (let i = 0; i < arr.length; i++) if (arr[i] instanceof Y.AbstractType) walk(arr[i], p.concat([i]))
    }
  }
  for (const n of rootNames) walk(getRoot(doc, n), [n])
  return out
}

function resolvePath (doc, p) {
  let cur = getRoot(doc, p[0])
  for (let i = 1; i < p.length; i++) {
    if (cur instanceof Y.Map) cur = cur.get(p[i])
    else if (cur instanceof Y.Array) cur = p[i] < cur.length ? cur.get(p[i]) : undefined
    else return null
    if (!(cur instanceof Y.AbstractType)) return null
  }
  return cur
}

// ---------------------------------------------------------------- text helpers

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff

/** The Y.Text content as a string of exactly ytext.length UTF-16 units (embeds -> U+FFFC). */
function unitString (ytext) {
  let s = ''
  for (const op of ytext.toDelta()) s += typeof op.insert === 'string' ? op.insert : '\uFFFC'
  return s
}

function validBoundary (s, p) {
  return p <= 0 || p >= s.length || !(isHigh(s.charCodeAt(p - 1)) && isLow(s.charCodeAt(p)))
}

/** Snap p to a code-point boundary (down by default). */
function snap (s, p, up = false) {
  if (validBoundary(s, p)) return p
  return up ? p + 1 : p - 1
}

function randPos (r, s) {
  const p = r.weighted([[15, s.length], [8, 0], [77, r.int(0, s.length)]])
  return snap(s, p, r.chance(0.5))
}

/** The UTF-16 offsets that fall between the halves of a surrogate pair. */
function splitPositions (s) {
  const out = []
  for (let p = 1; p < s.length; p++) if (!validBoundary(s, p)) out.push(p)
  return out
}

// Edits at an offset inside a surrogate pair (an emoji) split it: yjs then
// replaces both halves with U+FFFD (yjs issue 248), and so must the decoder.
// counters.splitEdits counts them per session.
const counters = { splitEdits: 0 }

/** A position inside a surrogate pair of s, or null when s has none. */
function randSplitPos (r, s) {
  const ps = splitPositions(s)
  if (ps.length === 0) return null
  counters.splitEdits++
  return r.pick(ps)
}

/** Mostly randPos; sometimes, where s has an emoji, the middle of one. */
function randPosMaybeSplit (r, s) {
  if (r.chance(0.1)) {
    const p = randSplitPos(r, s)
    if (p !== null) return p
  }
  return randPos(r, s)
}

/** [start, end) range on code-point boundaries, length >= 1 when s is non-empty */
function randRange (r, s) {
  const start = snap(s, r.int(0, Math.max(0, s.length - 1)))
  const end = snap(s, Math.min(s.length, start + r.len(s.length - start)), true)
  return [start, Math.max(start, end)]
}

// ---------------------------------------------------------------- operations

function newNestedType (r, depth) {
  const kind = r.weighted([[4, 'map'], [3, 'array'], [3, 'text']])
  const prelim = r.chance(0.4)
  switch (kind) {
    case 'map': {
      if (!prelim) return new Y.Map()
      const entries = []
      const n = r.int(1, 3)
      for (let i = 0; i < n; i++) entries.push([r.pick(MAP_KEYS), randJSON(r, 1)])
      return new Y.Map(entries)
    }
    case 'array': {
      if (!prelim) return new Y.Array()
      const vals = []
      const n = r.int(1, 3)
      for (let i = 0; i < n; i++) vals.push(randJSON(r, 1))
      return Y.Array.from(vals)
    }
    default:
      return prelim ? new Y.Text(randText(r)) : new Y.Text()
  }
}

function randValue (r, depth, allowTypes) {
  const kinds = [[70, 'json'], [4, 'bytes']]
  if (allowTypes && depth < 4) kinds.push([14, 'type'])
  switch (r.weighted(kinds)) {
    case 'bytes': return randBytes(r)
    case 'type': return newNestedType(r, depth)
    default: return randJSON(r, 1)
  }
}

function textOp (r, t) {
  const s = unitString(t)
  const op = s.length === 0
    ? r.weighted([[10, 'insert'], [2, 'insertFmt'], [1, 'embed']])
    : r.weighted([[40, 'insert'], [8, 'insertFmt'], [25, 'delete'], [8, 'format'], [3, 'unformat'], [3, 'embed'], [6, 'split']])
  switch (op) {
    case 'split': {
      // an edit whose position, start or end is inside an emoji
      const p = randSplitPos(r, s)
      if (p === null) { t.insert(randPos(r, s), randText(r)); break }
      switch (r.weighted([[4, 'insert'], [3, 'deleteFrom'], [3, 'deleteTo'], [2, 'format'], [1, 'embed']])) {
        case 'insert': t.insert(p, r.chance(0.5) ? typedChar(r) : randText(r)); break
        case 'deleteFrom': t.delete(p, Math.min(s.length - p, r.len(s.length - p))); break
        case 'deleteTo': { const a = Math.max(0, p - r.len(p)); t.delete(a, p - a); break }
        case 'format': t.format(p, Math.min(s.length - p, r.len(s.length - p)), { bold: true }); break
        case 'embed': t.insertEmbed(p, { image: 'split.png' }); break
      }
      break
    }
    case 'insert': t.insert(randPos(r, s), randText(r)); break
    case 'insertFmt': t.insert(randPos(r, s), randText(r), r.pick([{ italic: true }, { italic: true }, { bold: true }, { italic: true, color: '#ff0000' }])); break
    case 'delete': { const [a, b] = randRange(r, s); t.delete(a, b - a); break }
    case 'format': { const [a, b] = randRange(r, s); t.format(a, b - a, r.pick([{ bold: true }, { bold: true }, { italic: true }, { link: 'https://example.com/' + r.int(0, 9) }])); break }
    case 'unformat': { const [a, b] = randRange(r, s); t.format(a, b - a, { bold: null }); break }
    case 'embed': t.insertEmbed(randPos(r, s), r.pick([{ image: 'img-' + r.int(0, 99) + '.png' }, { formula: 'e=mc^2' }])); break
  }
}

function mapOp (r, m, depth) {
  const keys = Array.from(m.keys())
  const op = keys.length === 0
    ? r.weighted([[10, 'set'], [3, 'setType'], [1, 'setBytes']])
    : r.weighted([[25, 'set'], [20, 'overwrite'], [10, 'delete'], [8, 'setType'], [3, 'setBytes']])
  switch (op) {
    case 'set': m.set(r.pick(MAP_KEYS), randJSON(r, 0)); break
    case 'overwrite': m.set(r.pick(keys), randValue(r, depth, true)); break
    case 'delete': m.delete(r.pick(keys)); break
    case 'setType': if (depth < 4) { m.set(r.pick(MAP_KEYS), newNestedType(r, depth)) } else { m.set(r.pick(MAP_KEYS), randJSON(r, 0)) } break
    case 'setBytes': m.set(r.pick(MAP_KEYS), randBytes(r)); break
  }
}

function arrayOp (r, a, depth) {
  const len = a.length
  const op = len === 0
    ? r.weighted([[10, 'insert'], [4, 'push'], [2, 'unshift']])
    : r.weighted([[25, 'insert'], [10, 'push'], [6, 'unshift'], [15, 'delete']])
  const vals = () => {
    const n = r.weighted([[50, 1], [30, r.int(2, 4)], [5, r.int(5, 12)]])
    const out = []
    for (let i = 0; i < n; i++) out.push(randValue(r, depth, true))
    return out
  }
  switch (op) {
    case 'insert': a.insert(r.int(0, len), vals()); break
    case 'push': a.push(vals()); break
    case 'unshift': a.unshift(vals()); break
    case 'delete': {
      const start = r.int(0, len - 1)
      a.delete(start, r.len(len - start))
      break
    }
  }
}

function typeOp (r, t, depth) {
  if (t instanceof Y.Text) textOp(r, t)
  else if (t instanceof Y.Map) mapOp(r, t, depth)
  else if (t instanceof Y.Array) arrayOp(r, t, depth)
  else throw new Error('unknown type')
}

// ---------------------------------------------------------------- session

const REMOTE = 'remote'

function runSession (seedStr, index) {
  const r = new Rng(hashSeed(`${seedStr}:${index}`))
  counters.splitEdits = 0
  const nClients = r.int(3, 5)
  const gc = r.chance(0.5)

  // client IDs: sometimes tiny, sometimes full uint32 range, always distinct
  const idStyle = r.weighted([[3, 'small'], [4, 'wide'], [3, 'mixed']])
  const ids = []
  while (ids.length < nClients) {
    const small = idStyle === 'small' || (idStyle === 'mixed' && r.chance(0.5))
    const id = small ? r.int(1, 20) : 1 + Math.floor(r.float() * 4294967295)
    if (!ids.includes(id)) ids.push(id)
  }

  let roots = []
  if (r.chance(0.9)) roots.push('text')
  if (r.chance(0.35)) roots.push('notes')
  if (r.chance(0.75)) roots.push('map')
  if (r.chance(0.65)) roots.push('array')
  if (roots.length === 0) roots = ['text']

  const docs = []
  const observed = [] // every update event on any client, in order
  const local = [] // {client, u} updates produced by local transactions
  const updates0 = [] // every update client 0 produced or applied
  for (let k = 0; k < nClients; k++) {
    const d = new Y.Doc({ gc })
    d.clientID = ids[k]
    d.on('update', (u, origin) => {
      observed.push(u)
      if (origin !== REMOTE) local.push({ client: k, u })
      if (k === 0) updates0.push(u)
    })
    docs.push(d)
  }

  const stats = { actions: 0, ops: 0, typed: 0, conflicts: 0, syncs: 0, delayed: 0 }
  const inflight = []

  const oneWay = (a, b) => {
    const u = Y.encodeStateAsUpdate(docs[a], Y.encodeStateVector(docs[b]))
    Y.applyUpdate(docs[b], u, REMOTE)
  }
  const pair = (a, b) => {
    const ua = Y.encodeStateAsUpdate(docs[a], Y.encodeStateVector(docs[b]))
    const ub = Y.encodeStateAsUpdate(docs[b], Y.encodeStateVector(docs[a]))
    Y.applyUpdate(docs[b], ua, REMOTE)
    Y.applyUpdate(docs[a], ub, REMOTE)
  }
  const syncAll = () => {
    for (let k = 1; k < nClients; k++) oneWay(k, 0)
    for (let k = 1; k < nClients; k++) oneWay(0, k)
    stats.syncs++
  }
  const twoClients = () => {
    const a = r.int(0, nClients - 1)
    let b = r.int(0, nClients - 2)
    if (b >= a) b++
    return [a, b]
  }

  const chooseTarget = (doc) => {
    const all = collectTypes(doc, roots)
    const weighted = all.map((e) => [e.path.length === 1 ? 6 : 3, e])
    return r.weighted(weighted)
  }

  const randomOp = (k) => {
    const doc = docs[k]
    const { type, path: p } = chooseTarget(doc)
    doc.transact(() => typeOp(r, type, p.length))
    stats.ops++
  }

  const typingRun = (k) => {
    const doc = docs[k]
    const texts = collectTypes(doc, roots).filter((e) => e.type instanceof Y.Text)
    if (texts.length === 0) return randomOp(k)
    const t = r.weighted(texts.map((e) => [e.path.length === 1 ? 5 : 1, e])).type
    let pos = randPosMaybeSplit(r, unitString(t))
    const n = r.weighted([[60, r.int(3, 15)], [30, r.int(15, 60)], [10, r.int(60, 150)]])
    for (let i = 0; i < n; i++) {
      if (pos > 0 && r.chance(0.08)) {
        // backspace one code point
        const s = unitString(t)
        const w = pos >= 2 && isLow(s.charCodeAt(pos - 1)) && isHigh(s.charCodeAt(pos - 2)) ? 2 : 1
        doc.transact(() => t.delete(pos - w, w))
        pos -= w
      } else {
        const c = typedChar(r)
        doc.transact(() => t.insert(pos, c))
        pos += c.length
      }
      stats.typed++
    }
  }

  const conflict = () => {
    syncAll()
    stats.conflicts++
    const participants = r.shuffle(docs.map((_, k) => k)).slice(0, r.int(2, nClients))
    const all = collectTypes(docs[0], roots)
    const kind = r.weighted([[10, 'textSamePos'], [6, 'mapSameKey'], [5, 'arraySamePos'], [4, 'deleteOverlap'], [4, 'deleteVsInsert'], [4, 'nestedDeleteVsEdit']])
    const pickPath = (pred) => {
      const cands = all.filter(pred)
      return cands.length ? r.pick(cands).path : null
    }
    switch (kind) {
      case 'textSamePos': {
        const p = pickPath((e) => e.type instanceof Y.Text)
        if (!p) break
        const s = unitString(resolvePath(docs[0], p))
        const pos = randPosMaybeSplit(r, s)
        for (const k of participants) {
          const t = resolvePath(docs[k], p)
          const pieces = r.int(1, 3) // several transactions each, typed at the same spot
          let at = pos
          for (let i = 0; i < pieces; i++) {
            const str = r.chance(0.5) ? typedChar(r) : randText(r)
            docs[k].transact(() => t.insert(at, str))
            at += str.length
          }
          stats.ops++
        }
        break
      }
      case 'mapSameKey': {
        const p = pickPath((e) => e.type instanceof Y.Map)
        if (!p) break
        const existing = Array.from(resolvePath(docs[0], p).keys())
        const key = existing.length && r.chance(0.6) ? r.pick(existing) : r.pick(MAP_KEYS)
        for (const k of participants) {
          const m = resolvePath(docs[k], p)
          docs[k].transact(() => {
            if (r.chance(0.15)) m.delete(key)
            else m.set(key, randValue(r, p.length, true))
          })
          stats.ops++
        }
        break
      }
      case 'arraySamePos': {
        const p = pickPath((e) => e.type instanceof Y.Array)
        if (!p) break
        const pos = r.int(0, resolvePath(docs[0], p).length)
        for (const k of participants) {
          const a = resolvePath(docs[k], p)
          docs[k].transact(() => a.insert(pos, [randValue(r, p.length, true), randJSON(r, 0)].slice(0, r.int(1, 2))))
          stats.ops++
        }
        break
      }
      case 'deleteOverlap':
      case 'deleteVsInsert': {
        const p = pickPath((e) => e.type instanceof Y.Text && e.type.length > 2)
        if (!p) break
        const s = unitString(resolvePath(docs[0], p))
        for (let i = 0; i < participants.length; i++) {
          const k = participants[i]
          const t = resolvePath(docs[k], p)
          if (kind === 'deleteVsInsert' && i % 2 === 1) {
            docs[k].transact(() => t.insert(snap(s, r.int(0, s.length)), randText(r)))
          } else {
            const [a, b] = randRange(r, s)
            docs[k].transact(() => t.delete(a, b - a))
          }
          stats.ops++
        }
        break
      }
      case 'nestedDeleteVsEdit': {
        const p = pickPath((e) => e.path.length >= 2)
        if (!p) break
        const [killer, ...editors] = participants
        const parentPath = p.slice(0, -1)
        const last = p[p.length - 1]
        const parent = resolvePath(docs[killer], parentPath)
        docs[killer].transact(() => {
          if (parent instanceof Y.Map) {
            if (r.chance(0.5)) parent.delete(last)
            else parent.set(last, randValue(r, parentPath.length, true))
          } else {
            parent.delete(last, 1)
          }
        })
        stats.ops++
        for (const k of editors) {
          const t = resolvePath(docs[k], p)
          const n = r.int(1, 3)
          for (let i = 0; i < n; i++) docs[k].transact(() => typeOp(r, t, p.length))
          stats.ops++
        }
        break
      }
    }
  }

  const nActions = r.weighted([[70, r.int(40, 150)], [25, r.int(150, 400)], [5, r.int(400, 1000)]])
  for (let step = 0; step < nActions; step++) {
    stats.actions++
    const action = r.weighted([
      [50, 'op'], [9, 'typing'], [6, 'conflict'], [10, 'pair'], [4, 'oneWay'],
      [4, 'send'], [4, 'deliver'], [3, 'all']
    ])
    switch (action) {
      case 'op': randomOp(r.int(0, nClients - 1)); break
      case 'typing': typingRun(r.int(0, nClients - 1)); break
      case 'conflict': conflict(); break
      case 'pair': { const [a, b] = twoClients(); pair(a, b); stats.syncs++; break }
      case 'oneWay': { const [a, b] = twoClients(); oneWay(a, b); stats.syncs++; break }
      case 'send': {
        // an update put "on the wire" now and delivered later, possibly out of
        // order with newer ones (the receiver then holds pending structs)
        const [a, b] = twoClients()
        inflight.push({ to: b, u: Y.encodeStateAsUpdate(docs[a], Y.encodeStateVector(docs[b])) })
        stats.delayed++
        break
      }
      case 'deliver': {
        if (inflight.length === 0) break
        const i = r.int(0, inflight.length - 1)
        const [m] = inflight.splice(i, 1)
        Y.applyUpdate(docs[m.to], m.u, REMOTE)
        break
      }
      case 'all': syncAll(); break
    }
  }
  // the session always writes something into its first root
  if (!roots.some((n) => rootWasWritten(docs[0], n))) {
    docs[0].transact(() => typeOp(r, getRoot(docs[0], roots[0]), 1))
  }
  // deliver whatever is still on the wire (in random order), then converge
  while (inflight.length) {
    const [m] = inflight.splice(r.int(0, inflight.length - 1), 1)
    Y.applyUpdate(docs[m.to], m.u, REMOTE)
  }
  syncAll()

  // ------------------------------------------------ checks
  const written = roots.filter((n) => rootWasWritten(docs[0], n))
  const expected = rootsJSON(docs[0], written)
  const expectedStr = JSON.stringify(expected)
  const sv0 = Buffer.from(Y.encodeStateVector(docs[0])).toString('hex')
  // An edit inside an emoji can leave yjs's own replicas different: the
  // halves are replaced where a client splits the item, and a client that
  // gets the edit's item only as a GC range (deleted and collected before
  // it arrived) never splits. Only such sessions may diverge.
  let divergedClients = 0
  for (let k = 1; k < nClients; k++) {
    const got = JSON.stringify(rootsJSON(docs[k], written))
    if (got !== expectedStr) {
      if (counters.splitEdits === 0) throw new Error(`session ${seedStr}/${index}: client ${k} diverged:\n${got}\n!=\n${expectedStr}`)
      divergedClients++
    }
    if (Buffer.from(Y.encodeStateVector(docs[k])).toString('hex') !== sv0) throw new Error(`session ${seedStr}/${index}: state vectors differ`)
    for (const n of written) if (!rootWasWritten(docs[k], n)) throw new Error('root presence differs')
  }
  for (const d of docs) {
    if (d.store.pendingStructs !== null || d.store.pendingDs !== null) throw new Error(`session ${seedStr}/${index}: pending structs after final sync`)
  }

  const full = Y.encodeStateAsUpdate(docs[0])
  const merged = Y.mergeUpdates(observed)

  const fresh = (updates) => {
    const d = new Y.Doc({ gc })
    for (const u of updates) Y.applyUpdate(d, u)
    return d
  }
  // otherRoots: what yjs shows for an artifact whose content differs from
  // roots (possible only after edits inside an emoji, see above).
  const otherRoots = {}
  const check = (what, d, wantComplete = true) => {
    const got = rootsJSON(d, written)
    if (JSON.stringify(got) !== expectedStr) {
      if (counters.splitEdits === 0 || what === '.bin') throw new Error(`session ${seedStr}/${index}: ${what} gives different content:\n${JSON.stringify(got)}\n!=\n${expectedStr}`)
      otherRoots[what] = got
    }
    if (wantComplete && (d.store.pendingStructs !== null || d.store.pendingDs !== null)) throw new Error(`session ${seedStr}/${index}: ${what} leaves pending structs`)
  }
  check('.bin', fresh([full]))
  check('mergedUpdate', fresh([merged]))
  check('updatesV1', fresh(updates0))

  // A gapped merge: all locally produced updates except one from the middle of
  // some client's history, so the merged update contains a Skip struct.
  let skip = { skipUpdate: null, skipMissing: null, skipRoots: null }
  const localStructs = local.map(({ client, u }) => ({ client, u, n: Y.decodeUpdate(u).structs.length }))
  const cands = []
  for (let i = 0; i < localStructs.length; i++) {
    const e = localStructs[i]
    if (e.n === 0) continue
    // needs client history on both sides, else the merge just starts/ends later
    const before = localStructs.some((f, j) => j < i && f.client === e.client && f.n > 0)
    const after = localStructs.some((f, j) => j > i && f.client === e.client && f.n > 0)
    if (before && after) cands.push(i)
  }
  if (cands.length) {
    const drop = r.pick(cands)
    const gapped = Y.mergeUpdates(localStructs.filter((_, i) => i !== drop).map((e) => e.u))
    const skips = Y.decodeUpdate(gapped).structs.filter((s) => s instanceof Y.Skip).length
    if (skips === 0) throw new Error(`session ${seedStr}/${index}: gapped merge has no Skip struct`)
    const dGap = fresh([gapped])
    const skipRoots = {}
    for (const n of written) skipRoots[n] = canonical(getRoot(dGap, n))
    Y.applyUpdate(dGap, localStructs[drop].u)
    check('skipUpdate + skipMissing', dGap)
    skip = { skipUpdate: b64(gapped), skipMissing: b64(localStructs[drop].u), skipRoots }
  }

  const rootTypes = {}
  for (const n of written) rootTypes[n] = ROOT_KINDS[n]
  const mergedSkips = Y.decodeUpdate(merged).structs.filter((s) => s instanceof Y.Skip).length
  const json = {
    roots: expected,
    rootTypes,
    gc,
    clientIDs: ids,
    mergedUpdate: b64(merged),
    updatesV1: updates0.map(b64),
    ...skip,
    otherRoots,
    stats: {
      ...stats,
      splitEdits: counters.splitEdits,
      divergedClients,
      clients: nClients,
      observedUpdates: observed.length,
      localUpdates: local.length,
      fullBytes: full.length,
      mergedBytes: merged.length,
      mergedSkipStructs: mergedSkips
    }
  }
  return { full, json }
}

// ---------------------------------------------------------------- main

const { seed, count, out } = parseArgs(process.argv.slice(2))
fs.mkdirSync(out, { recursive: true })
let totalBytes = 0
const t0 = process.hrtime.bigint()
for (let i = 0; i < count; i++) {
  const { full, json } = runSession(seed, i)
  const base = path.join(out, `session-${seed}-${i}`)
  fs.writeFileSync(base + '.bin', full)
  fs.writeFileSync(base + '.json', JSON.stringify(json) + '\n')
  totalBytes += full.length
}
const ms = Number(process.hrtime.bigint() - t0) / 1e6
console.error(`gen-sessions: wrote ${count} sessions (seed ${seed}) to ${out} in ${ms.toFixed(0)} ms, ${totalBytes} bytes of .bin`)
