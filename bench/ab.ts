// A/B runs: cases, or variants of one (flags, a setting, another checkout: bench/variants.ts),
// started one at a time in alternating rounds, each loaded with wrk, and the CPU per request of
// every thread of the measured process (request thread, audit worker, V8's helper threads) from
// /proc/PID/task/TID/stat, its RSS under load, p99 against p50, and the hypervisor's steal during
// the run. On a shared machine whose speed drifts by tens of percent from minute to minute, only
// rounds run side by side compare (issue 15).
//
//   node bench/ab.ts bouncer-full,bouncer-full@--heap-growing-percent=50 [--rounds 4] [--duration 8]
//   node bench/ab.ts 'bouncer-full^/tmp/base,bouncer-full'   # a code change against the commit before
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startUpstream, useCompiledBuild } from './cases.ts'
import { startBenchIssuer } from './lib/issuer.ts'
import { runLoad } from './lib/load.ts'
import { machineTicks, rssBytes, statFields } from './lib/processes.ts'
import { startVariant } from './variants.ts'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '3' }, duration: { type: 'string', default: '8' }, sources: { type: 'boolean', default: false } },
})
const variants = (positionals[0] ?? 'bouncer-bare,bouncer-audit').split(',')
const rounds = Number(values.rounds)
const durationSec = Number(values.duration)
const USER_HZ = 100

/** CPU ticks by thread kind: the request thread, the audit worker, V8's helpers (summed). */
function threadTicks(pid: number): Map<string, number> {
  const ticks = new Map<string, number>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const fields = statFields(pid, tid)
    if (fields.length === 0) continue // the thread ended between listing and reading
    let comm: string
    try {
      comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
    } catch {
      continue // gone since
    }
    const kind = comm.startsWith('V8Worker') ? 'V8Worker' : comm
    ticks.set(kind, (ticks.get(kind) ?? 0) + Number(fields[11]) + Number(fields[12])) // utime, stime
  }
  return ticks
}

if (!values.sources) useCompiledBuild()
const upstream = await startUpstream()
const issuer = await startBenchIssuer()
const dir = await mkdtemp(join(tmpdir(), 'bouncer-ab-'))
const totals = new Map<string, string[]>()
try {
  for (let round = 0; round < rounds; round++) {
    for (const variant of variants) {
      const { running, pid, load } = await startVariant(variant, { upstreamPort: upstream.port, issuer, dir, quick: false })
      try {
        const before = threadTicks(pid)
        const machineBefore = machineTicks()
        const result = await runLoad({ ...load, durationSec })
        const after = threadTicks(pid)
        const machineAfter = machineTicks()
        const stealPct = (100 * (machineAfter.steal - machineBefore.steal)) / Math.max(1, machineAfter.total - machineBefore.total)
        const rssMb = rssBytes(pid) / 2 ** 20
        const anonMb = rssBytes(pid, 'RssAnon') / 2 ** 20
        let total = 0
        const parts: string[] = []
        for (const [kind, ticks] of after) {
          const micros = ((ticks - (before.get(kind) ?? 0)) * (1_000_000 / USER_HZ)) / result.requests
          total += micros
          if (micros >= 0.1) parts.push(`${kind} ${micros.toFixed(1)}`)
        }
        console.log(`${variant}: ${Math.round(result.rps)} req/s, CPU ${total.toFixed(1)} µs/req (${parts.join(', ')}), RSS ${rssMb.toFixed(0)} MB (anonymous ${anonMb.toFixed(0)}), p50 ${result.p50ms} ms, p99 ${result.p99ms} ms (${(result.p99ms / result.p50ms).toFixed(2)}×), steal ${stealPct.toFixed(1)}%`)
        totals.set(variant, [...(totals.get(variant) ?? []), total.toFixed(1)])
      } finally {
        await running.stop()
      }
    }
  }
  console.log('\nCPU µs per request, round by round:')
  for (const [variant, each] of totals) console.log(`  ${variant}: ${each.join(' ')}`)
} finally {
  await issuer.close()
  await upstream.stop()
  await rm(dir, { recursive: true, force: true })
}
