// Instructions per request: variants of a case run under valgrind's callgrind, which counts the
// instructions the measured process executes (every thread, user space only: the kernel's share,
// the socket calls, is not in it). On a shared VM whose CPU time per request moved by ±25% from
// round to round (2026-12-03: the minimal proxy 87-119 µs, bench/README.md "Profiling"), the
// median window of (c) was 164.3-165.9 thousand in four runs, and 183.9 in a fifth: an A/B of a
// few percent can be read from two runs of each side.
//
//   node bench/instructions.ts minimal,bouncer-bare,'bouncer-bare^/tmp/base' [--windows 4] [--requests 10000] [--warmup 20000]
//   node bench/instructions.ts 'bouncer-bare@--perf-basic-prof' --top 40   # and where they go, JavaScript functions named
//   node bench/instructions.ts 'bouncer-bare^/tmp/base,bouncer-bare' --post 1024 [--post-type application/json]   # POSTs of a JSON body instead
//
// Each variant starts under callgrind with its instrumentation off, takes the wrk warm-up, then
// `--warmup` requests with instrumentation on (V8 tiers its code up slowly at valgrind's pace: with
// 5,000 the first windows still counted 1.5x), then `--windows` windows of `--requests` requests,
// counted apart (callgrind_control --zero, --dump). The median window is the result: a window with
// a full GC in it counts ~10-20% more. Slow: ~6 minutes a variant with the defaults (~300 req/s).
// The load is a fixed count of keep-alive GETs (50 at a time) from an undici client on the other
// core. What it cannot see: time the same instructions take (cache misses), and the kernel's.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startUpstream, useCompiledBuild } from './cases.ts'
import { startBenchIssuer } from './lib/issuer.ts'
import { LOAD_CORE, pinned, type Started } from './lib/processes.ts'
import { startVariant } from './variants.ts'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    windows: { type: 'string', default: '4' },
    requests: { type: 'string', default: '10000' },
    warmup: { type: 'string', default: '20000' },
    top: { type: 'string', default: '0' },
    sources: { type: 'boolean', default: false },
    /** POSTs with a body of this many bytes (a JSON object) instead of GETs. */
    post: { type: 'string', default: '0' },
    'post-type': { type: 'string', default: 'application/json' },
  },
})
const postBytes = Number(values.post)
const variants = (positionals[0] ?? 'minimal,bouncer-bare').split(',')
const windows = Number(values.windows)
const requestsPerWindow = Number(values.requests)
const warmupRequests = Number(values.warmup)

if (spawnSync('valgrind', ['--version']).status !== 0) throw new Error('bench/instructions.ts needs valgrind (apt-get install valgrind)')
if (!values.sources) useCompiledBuild()
const dir = await mkdtemp(join(tmpdir(), 'bouncer-instructions-'))
// startProcess runs the measured process (the gateway, the minimal proxy) under this.
process.env.BENCH_WRAP = `valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=${dir}/callgrind.%p.out`

const CLIENT = `
import { Pool } from 'undici'
const [url, count, concurrency, headers, postBytes] = [new URL(process.argv[1]), Number(process.argv[2]), Number(process.argv[3]), JSON.parse(process.argv[4]), Number(process.argv[5])]
const body = postBytes > 0 ? JSON.stringify({ data: 'x'.repeat(Math.max(0, postBytes - 11)) }) : undefined
const pool = new Pool(url.origin, { connections: concurrency, pipelining: 1 })
let sent = 0
let failed = 0
async function loop() {
  while (sent < count) {
    sent++
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await pool.request({ path: url.pathname + url.search, method: body === undefined ? 'GET' : 'POST', headers: { host: url.host, ...headers }, body })
        if (response.statusCode >= 300) failed++
        await response.body.dump()
        break
      } catch (err) {
        // A keep-alive connection the server closed as this request went out (its idle timeout
        // under valgrind's pace): the GET goes again on another, as a browser would send it.
        if (attempt === 3) throw err
      }
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, loop))
await pool.close()
if (failed > 0) { console.error(failed + ' of ' + count + ' requests failed'); process.exit(1) }
`

/** Sends `count` GETs (or `--post` POSTs), 50 at a time, from a client pinned to the load core; rejects if any failed. */
async function load(url: string, headers: Record<string, string>, count: number): Promise<void> {
  const [cmd, argv] = pinned(LOAD_CORE, process.execPath, ['--input-type=module', '-e', CLIENT, url, String(count), '50', JSON.stringify(headers), String(postBytes)])
  const client = spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit'], cwd: process.cwd() })
  const [code] = await once(client, 'exit')
  if (code !== 0) throw new Error(`the load client exited with ${code}`)
}

/** A load that failed: with what the measured process printed last, and how it ended if it did. */
function failed(measured: Started, err: unknown): never {
  const exit = measured.child.exitCode ?? measured.child.signalCode
  throw new Error(`${(err as Error).message}; the measured process ${exit === null ? 'still runs' : `exited (${exit})`}, its last output:\n${measured.output().slice(-3000)}`)
}

function callgrind(pid: number, ...args: string[]): void {
  const result = spawnSync('callgrind_control', [...args, String(pid)], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`callgrind_control ${args.join(' ')} failed: ${result.stderr}`)
}

/** The dump callgrind wrote last for `pid` (its files: callgrind.PID.out.N). */
function lastDump(pid: number): string {
  const dumps = readdirSync(dir).filter((name) => name.startsWith(`callgrind.${pid}.out.`))
  const last = dumps.sort((a, b) => Number(a.split('.').at(-1)) - Number(b.split('.').at(-1))).at(-1)
  if (last === undefined) throw new Error(`callgrind wrote no dump for ${pid}`)
  return join(dir, last)
}

function dumpInstructions(dump: string): number {
  const total = /^totals: (\d+)/m.exec(readFileSync(dump, 'utf8'))?.[1]
  if (total === undefined) throw new Error(`callgrind's dump ${dump} has no totals`)
  return Number(total)
}

const upstream = await startUpstream()
const issuer = await startBenchIssuer()
const results: Array<{ variant: string; perWindow: number[] }> = []
try {
  for (const variant of variants) {
    const { running, pid, load: settings } = await startVariant(variant, { upstreamPort: upstream.port, issuer, dir, quick: false })
    try {
      if (settings.tokensFile) throw new Error(`${variant} rotates tokens; this tool sends fixed headers only`)
      const headers = postBytes > 0 ? { ...settings.headers, 'content-type': values['post-type'] } : settings.headers ?? {}
      callgrind(pid, '--instr=on')
      await load(settings.url, headers, warmupRequests).catch((err: unknown) => failed(running.measured, err))
      const perWindow: number[] = []
      for (let i = 0; i < windows; i++) {
        callgrind(pid, '--zero')
        await load(settings.url, headers, requestsPerWindow).catch((err: unknown) => failed(running.measured, err))
        callgrind(pid, '--dump')
        perWindow.push(dumpInstructions(lastDump(pid)) / requestsPerWindow)
      }
      results.push({ variant, perWindow })
      if (Number(values.top) > 0) printTopFunctions(pid, Number(values.top))
      console.log(`${variant}: ${perWindow.map((n) => (n / 1000).toFixed(1)).join(' ')} thousand instructions a request, median ${(median(perWindow) / 1000).toFixed(1)}`)
    } finally {
      await running.stop()
    }
  }
} finally {
  await upstream.stop()
  await issuer.close()
  await rm(dir, { recursive: true, force: true })
}

const base = results[0]
if (base !== undefined) {
  console.log('\nmedian thousand instructions a request (× the first):')
  for (const { variant, perWindow } of results) console.log(`  ${variant}: ${(median(perWindow) / 1000).toFixed(1)} (${(median(perWindow) / median(base.perWindow)).toFixed(3)})`)
}

/**
 * The last window's functions by their own instructions a request. V8's compiled JavaScript has no
 * symbols callgrind can read: run the variant with `@--perf-basic-prof` and its code addresses are
 * named from the map V8 writes (/tmp/perf-PID.map: start, size, name).
 */
function printTopFunctions(pid: number, top: number): void {
  const dump = lastDump(pid)
  const annotated = spawnSync('callgrind_annotate', ['--threshold=100', dump], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 })
  const jit = readPerfMap(pid)
  const byName = new Map<string, number>()
  for (const line of annotated.stdout.split('\n')) {
    const row = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.+)$/.exec(line)
    if (row === null || row[2]?.includes('PROGRAM TOTALS')) continue
    const count = Number((row[1] as string).replaceAll(',', ''))
    const address = /^\?\?\?:0x([0-9a-f]+) \[\?\?\?\]$/.exec(row[2] as string)?.[1]
    const name = address === undefined ? (row[2] as string).replace(/^\S*?:/, '').replace(/ \[.*\]$/, '') : (jit(BigInt(`0x${address}`)) ?? 'JIT code (unnamed)')
    byName.set(name, (byName.get(name) ?? 0) + count)
  }
  console.log(`  own instructions a request, last window (${dump}):`)
  for (const [name, count] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${(count / requestsPerWindow).toFixed(0).padStart(8)}  ${name.slice(0, 150)}`)
}

/** A lookup of V8's code addresses in /tmp/perf-PID.map (written with --perf-basic-prof); none without it. */
function readPerfMap(pid: number): (address: bigint) => string | undefined {
  let text: string
  try {
    text = readFileSync(`/tmp/perf-${pid}.map`, 'utf8')
  } catch {
    return () => undefined
  }
  const entries = text.split('\n').filter(Boolean).map((line) => {
    const [start = '0', size = '0', ...name] = line.split(' ')
    return { start: BigInt(`0x${start}`), end: BigInt(`0x${start}`) + BigInt(`0x${size}`), name: name.join(' ') }
  }).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
  return (address) => {
    let low = 0
    let high = entries.length - 1
    while (low <= high) {
      const middle = (low + high) >> 1
      const entry = entries[middle] as (typeof entries)[number]
      if (address < entry.start) high = middle - 1
      else if (address >= entry.end) low = middle + 1
      else return entry.name
    }
    return undefined
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}
