// Where a case's CPU goes, from the kernel's own sampler: `perf record -e cpu-clock` on the
// measured process under wrk, with V8's JIT frames resolved (`--perf-prof`, `perf inject --jit`).
// Unlike `--cpu-prof` (V8's sampler, wall time: a thread waiting in a syscall or preempted by the
// audit worker counts as busy there — it put `writev` at 35% of (d)), every sample here is CPU
// time, kernel included, and each thread is apart (issue 15).
//
//   node bench/perf.ts bouncer-bare,bouncer-full [--rounds 1] [--duration 8] [--frequency 2000] [--top 25]
//   node bench/perf.ts 'bouncer-full^/tmp/base'       # a variant: another checkout's gateway (bench/variants.ts)
//   node bench/perf.ts bouncer-full --focus recordLine  # the hottest leaves under one function (or a path: dist/audit/)
//
// Prints, per run: CPU µs per request by thread, the main thread's split (kernel, V8/Node native,
// JIT-compiled JavaScript), its hottest leaf functions, and the inclusive cost of each of the
// gateway's own functions (a function's samples with it anywhere on the stack; inlined callees
// count in their caller). Needs Linux `perf` (Debian: linux-perf) allowed to sample the process.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startUpstream, useCompiledBuild } from './cases.ts'
import { startBenchIssuer } from './lib/issuer.ts'
import { runLoad } from './lib/load.ts'
import { startVariant } from './variants.ts'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '1' },
    duration: { type: 'string', default: '8' },
    frequency: { type: 'string', default: '2000' },
    top: { type: 'string', default: '25' },
    focus: { type: 'string' },
  },
})
interface Sample {
  thread: string
  /** Leaf first: `symbol (dso)`. */
  frames: string[]
}

/** `perf script` output: a `comm` line, then one frame per line, a blank line between samples. */
function parseSamples(text: string): Sample[] {
  const samples: Sample[] = []
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((line) => line.trim() !== '')
    if (lines.length < 2) continue
    const frames = lines.slice(1).map((line) => line.trim().replace(/^[0-9a-f]+ /, ''))
    samples.push({ thread: (lines[0] as string).trim(), frames })
  }
  return samples
}

/** The kernel; code V8 generated (compiled JavaScript, regular expressions, and V8's builtins, which perf inject names from the same dump); everything else in Node's binary and libraries. */
function kindOf(frame: string): 'kernel' | 'V8 code' | 'native' {
  if (frame.endsWith('([kernel.kallsyms])')) return 'kernel'
  if (frame.includes('/jitted-')) return 'V8 code'
  return 'native'
}

function report(samples: Sample[], requests: number, periodNs: number, top: number, focus: string | undefined): string {
  const micros = (count: number) => ((count * periodNs) / 1000 / requests).toFixed(2).padStart(7)
  const lines: string[] = []
  const byThread = new Map<string, Sample[]>()
  for (const sample of samples) {
    const each = byThread.get(sample.thread)
    if (each) each.push(sample)
    else byThread.set(sample.thread, [sample])
  }
  lines.push(`CPU µs per request by thread: ${[...byThread].map(([thread, each]) => `${thread} ${micros(each.length).trim()}`).join(', ')}`)
  const main = byThread.get(process.env.PERF_THREAD ?? 'MainThread') ?? [] // PERF_THREAD=WorkerThread: another thread's leaves
  const kinds = new Map<string, number>()
  const leaves = new Map<string, number>()
  const inclusive = new Map<string, number>()
  for (const sample of main) {
    const leaf = sample.frames[0] as string
    kinds.set(kindOf(leaf), (kinds.get(kindOf(leaf)) ?? 0) + 1)
    const name = leaf.replace(/ \(\/[^)]*\)$/, '')
    leaves.set(name, (leaves.get(name) ?? 0) + 1)
    const seen = new Set<string>()
    for (const frame of sample.frames) {
      const own = /^JS:[*+^~]?'?(\S*) file:\/\/\/.*\/dist\/(\S+:\d+):\d+/.exec(frame)
      if (!own) continue
      const key = `${own[1] || '(anonymous)'} ${own[2]}`
      if (seen.has(key)) continue
      seen.add(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + 1)
    }
  }
  lines.push(`MainThread: ${[...kinds].map(([kind, count]) => `${kind} ${micros(count).trim()}`).join(', ')}`)
  lines.push('', 'MainThread, hottest leaves (µs/req):')
  for (const [name, count] of [...leaves].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${micros(count)}  ${name.slice(0, 110)}`)
  lines.push('', "MainThread, the gateway's functions, inclusive (µs/req):")
  for (const [name, count] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${micros(count)}  ${name}`)
  if (focus !== undefined) {
    const under = new Map<string, number>()
    let total = 0
    for (const sample of main) {
      if (!sample.frames.some((frame) => frame.includes(focus))) continue // a function's name, or a path: dist/audit/
      total++
      const name = (sample.frames[0] as string).replace(/ \(\/[^)]*\)$/, '')
      under.set(name, (under.get(name) ?? 0) + 1)
    }
    lines.push('', `MainThread, under ${focus} (${micros(total).trim()} µs/req), hottest leaves:`)
    for (const [name, count] of [...under].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${micros(count)}  ${name.slice(0, 110)}`)
  }
  return lines.join('\n')
}

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 30 })
  if (result.status !== 0) throw new Error(`${command} ${args[0]} failed: ${result.stderr || result.error?.message}`)
  return result.stdout
}

if (spawnSync('perf', ['--version']).error) {
  console.error('bench/perf.ts needs Linux perf on PATH (Debian: apt-get install linux-perf)')
  process.exit(2)
}
useCompiledBuild()
const work = await mkdtemp(join(tmpdir(), 'bouncer-perf-'))
process.chdir(work) // V8 writes jit-PID.dump in the gateway's working directory, perf inject its .so files beside it
const upstream = await startUpstream()
const issuer = await startBenchIssuer()
const frequency = Number(values.frequency)
try {
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const variant of (positionals[0] ?? 'bouncer-bare,bouncer-full').split(',')) {
      // --perf-prof: V8 writes a dump of the code it generates (jit-PID.dump), which perf inject reads.
      const { running, pid, load } = await startVariant(variant, { upstreamPort: upstream.port, issuer, dir: work, quick: false }, ['--perf-prof'])
      const data = join(work, `run-${round}.data`)
      try {
        // -k 1: the monotonic clock, which perf inject needs to match samples with the JIT dump.
        const perf = spawn('perf', ['record', '-k', '1', '-g', '-e', 'cpu-clock', '-F', String(frequency), '-p', String(pid), '-o', data, '--', 'sleep', values.duration], { stdio: 'ignore' })
        const recorded = new Promise((resolve) => perf.on('exit', resolve))
        const result = await runLoad({ ...load, durationSec: Number(values.duration) })
        await recorded
        run('perf', ['inject', '--jit', '-i', data, '-o', `${data}.jit`], work)
        const samples = parseSamples(run('perf', ['script', '-i', `${data}.jit`, '-F', 'comm,ip,sym,dso'], work))
        console.log(`\n## ${variant}, round ${round + 1}: ${Math.round(result.rps)} req/s, ${result.requests} requests, p50 ${result.p50ms} ms, p99 ${result.p99ms} ms\n`)
        console.log(report(samples, result.requests, 1e9 / frequency, Number(values.top), values.focus))
      } finally {
        await running.stop()
        for (const file of await readdir(work)) if (file.startsWith('jit') || file.endsWith('.data') || file.endsWith('.jit')) await rm(join(work, file), { force: true })
      }
    }
  }
} finally {
  await issuer.close()
  await upstream.stop()
  process.chdir(tmpdir())
  await rm(work, { recursive: true, force: true })
}
