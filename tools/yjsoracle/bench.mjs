#!/usr/bin/env node
// bench.mjs — time how long the real `yjs` takes to load a full-state update
// and read a root Y.Text, as the JS baseline for the Go decoder's benchmark.
//
//   node bench.mjs FILE.bin [FILE2.bin ...] [--iterations N] [--root text]
//
// Per file: read the bytes once, warm up, then time N iterations of
//   const d = new Y.Doc(); Y.applyUpdate(d, bytes); d.getText(root).toString()
// each with process.hrtime.bigint(), and print one JSON line:
//   {"file": ..., "ns_per_op": <median ns>, "iterations": N, "bytes": ..., "min_ns": ..., "mean_ns": ...}
// Without --iterations, N is chosen for about 1 s of timed work (at least 5).
//
//   node --expose-gc bench.mjs --serve
//
// Serves the Go benchmark (internal/yjs), which interleaves batches of Go and
// yjs runs so that both see the same load on a busy machine. One JSON request
// per stdin line, one JSON answer per stdout line:
//   {"file": F, "roots": [[name, kind], ...], "n": N}  -> {"ns": [N samples], "cpu_ns": C}
//     times N runs of new Y.Doc + Y.applyUpdate + reading every root (text:
//     toString, map/array: toJSON); cpu_ns is the CPU time (user + system,
//     every thread: V8's GC helpers too) of all N. The first request for a
//     file warms up.
//   {"file": F, "roots": [...], "heap": true}  -> {"peak": B, "live": B}
//     after warming up and a full GC, 5 times new Y.Doc + Y.applyUpdate +
//     reading the roots, every document kept; peak is heapUsed then minus
//     heapUsed before (garbage included), live the same after another full
//     GC with the documents still referenced; both per document.
//     Run node with a young generation large enough that no scavenge runs
//     during the update (--max-semi-space-size=256), or peak is understated.
// Errors answer {"error": message}.

import * as Y from 'yjs'
import fs from 'node:fs'

function die (msg, code = 2) {
  console.error(`bench: ${msg}`)
  console.error('usage: node bench.mjs FILE.bin [FILE2.bin ...] [--iterations N] [--root text]')
  console.error('       node --expose-gc bench.mjs --serve   (JSON requests on stdin, see the header)')
  process.exit(code)
}

const files = []
let iterations = null
let root = 'text'
let serve = false
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  let a = argv[i]
  let v
  const eq = a.indexOf('=')
  if (a.startsWith('--') && eq > 0) { v = a.slice(eq + 1); a = a.slice(0, eq) }
  const take = () => {
    if (v !== undefined) return v
    if (i + 1 >= argv.length) die(`missing value for ${a}`)
    return argv[++i]
  }
  if (a === '--iterations' || a === '-n') {
    iterations = Number(take())
    if (!Number.isInteger(iterations) || iterations < 1) die('--iterations must be a positive integer')
  } else if (a === '--serve') {
    serve = true
  } else if (a === '--root') {
    root = take()
  } else if (a.startsWith('--')) {
    die(`unknown option ${a}`)
  } else {
    files.push(a)
  }
}
if (files.length === 0 && !serve) die('no input files')

let sink = 0

// readRoot reads a root as the Go benchmark does: text with toString (the
// Y.Text the traces fill), other kinds with toJSON.
function readRoot (d, name, kind) {
  switch (kind) {
    case 'text': return d.getText(name).toString()
    case 'map': return d.getMap(name).toJSON()
    case 'array': return d.getArray(name).toJSON()
    case 'xmlFragment': return d.getXmlFragment(name).toString()
  }
  throw new Error(`unknown root kind ${kind}`)
}

if (serve) {
  if (typeof globalThis.gc !== 'function') die('--serve needs node --expose-gc')
  const { createInterface } = await import('node:readline')
  const loaded = new Map()
  const load = (file) => {
    let bytes = loaded.get(file)
    if (!bytes) { bytes = new Uint8Array(fs.readFileSync(file)); loaded.set(file, bytes) }
    return bytes
  }
  const run = (bytes, roots) => {
    const d = new Y.Doc()
    Y.applyUpdate(d, bytes)
    for (const [name, kind] of roots) {
      const v = readRoot(d, name, kind)
      sink += typeof v === 'string' ? v.length : 1
    }
    return d
  }
  const warmed = new Set()
  const heapUsed = () => process.memoryUsage().heapUsed
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue
    let answer
    try {
      const req = JSON.parse(line)
      const bytes = load(req.file)
      const roots = req.roots ?? [['text', 'text']]
      if (req.heap) {
        // Warm up first, so that compiling yjs's code is not counted, then
        // hold 5 documents at once and divide: V8 frees unrelated memory
        // (old bytecode, caches) in a full GC, which one document's figures
        // would not absorb.
        for (let i = 0; i < 3; i++) run(bytes, roots)
        const k = 5
        globalThis.gc()
        globalThis.gc()
        const h0 = heapUsed()
        const docs = []
        for (let i = 0; i < k; i++) docs.push(run(bytes, roots))
        const peak = (heapUsed() - h0) / k
        globalThis.gc()
        const live = (heapUsed() - h0) / k
        for (const d of docs) sink += d.clientID & 1
        answer = { peak: Math.round(peak), live: Math.round(live) }
      } else {
        if (!warmed.has(req.file)) {
          let t = 0
          for (let i = 0; i < 5 || (t < 3e8 && i < 10000); i++) {
            const t0 = process.hrtime.bigint()
            run(bytes, roots)
            t += Number(process.hrtime.bigint() - t0)
          }
          warmed.add(req.file)
        }
        const ns = []
        const cpu0 = process.cpuUsage()
        for (let i = 0; i < req.n; i++) {
          const t0 = process.hrtime.bigint()
          run(bytes, roots)
          ns.push(Number(process.hrtime.bigint() - t0))
        }
        const cpu = process.cpuUsage(cpu0)
        answer = { ns, cpu_ns: (cpu.user + cpu.system) * 1000 }
      }
    } catch (err) {
      answer = { error: String(err?.stack ?? err) }
    }
    process.stdout.write(JSON.stringify(answer) + '\n')
  }
  process.exit(0)
}
const once = (bytes) => {
  const d = new Y.Doc()
  Y.applyUpdate(d, bytes)
  sink += d.getText(root).toString().length
}
const timeOnce = (bytes) => {
  const t0 = process.hrtime.bigint()
  once(bytes)
  return Number(process.hrtime.bigint() - t0)
}

for (const file of files) {
  const bytes = new Uint8Array(fs.readFileSync(file))
  // warm-up: at least 5 runs and ~300 ms, to let the JIT settle
  const warm = []
  let warmNs = 0
  while (warm.length < 5 || (warmNs < 3e8 && warm.length < 10000)) { const t = timeOnce(bytes); warm.push(t); warmNs += t }
  // estimate the steady-state cost from the later half of the warm-up runs
  const late = warm.slice(Math.floor(warm.length / 2)).sort((a, b) => a - b)
  const est = Math.max(1, late[Math.floor(late.length / 2)])
  const n = iterations ?? Math.max(5, Math.min(1000000, Math.ceil(1e9 / est)))
  const samples = new Float64Array(n)
  for (let i = 0; i < n; i++) samples[i] = timeOnce(bytes)
  samples.sort()
  const median = n % 2 ? samples[(n - 1) / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2
  let sum = 0
  for (const s of samples) sum += s
  console.log(JSON.stringify({
    file,
    ns_per_op: Math.round(median),
    iterations: n,
    bytes: bytes.length,
    min_ns: samples[0],
    mean_ns: Math.round(sum / n)
  }))
}
if (sink < 0) console.error(sink)
