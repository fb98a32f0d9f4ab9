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

import * as Y from 'yjs'
import fs from 'node:fs'

function die (msg, code = 2) {
  console.error(`bench: ${msg}`)
  console.error('usage: node bench.mjs FILE.bin [FILE2.bin ...] [--iterations N] [--root text]')
  process.exit(code)
}

const files = []
let iterations = null
let root = 'text'
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
  } else if (a === '--root') {
    root = take()
  } else if (a.startsWith('--')) {
    die(`unknown option ${a}`)
  } else {
    files.push(a)
  }
}
if (files.length === 0) die('no input files')

let sink = 0
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
