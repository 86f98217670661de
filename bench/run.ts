// npm run bench [-- --quick] [--cases a,b] [--duration S] [--repeats N] [--connections N] [--out DIR]
//
// Each case runs after a warm-up for a fixed duration at a fixed concurrency, repeated; the median
// run is reported with the CPU the measured process spent per request (from /proc).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { CASES, startUpstream, type BenchCase } from './cases.ts'
import { benchAccess, type AccessRow } from './access.ts'
import { benchRecordLine, benchSqliteSink } from './audit.ts'
import { benchVerification, type VerifyRow } from './identity.ts'
import { benchMemoryLimits, benchRedisAccuracy, benchRedisStore } from './limits.ts'
import { benchRouter, type RouterRow } from './router.ts'
import { benchAssertion, benchRotationPickup, type AssertionCost, type RotationPickup } from './secrets.ts'
import { startBenchIssuer, type BenchIssuer } from './lib/issuer.ts'
import { runLoad, type LoadResult } from './lib/load.ts'
import { CORES, cpuMicros, LOAD_CORE, SERVER_CORE } from './lib/processes.ts'

export interface CaseResult {
  id: string
  title: string
  runs: LoadResult[]
  median: LoadResult & { cpuMicrosPerRequest: number }
}

export interface BenchOptions {
  quick: boolean
  cases: string[] | null
  durationSec: number
  repeats: number
  connections: number
  warmupSec: number
  out: string
}

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      cases: { type: 'string' },
      duration: { type: 'string' },
      repeats: { type: 'string' },
      connections: { type: 'string', default: '50' },
      out: { type: 'string', default: fileURLToPath(new URL('./results', import.meta.url)) },
    },
  })
  const quick = values.quick === true
  return {
    quick,
    cases: values.cases ? values.cases.split(',') : null,
    durationSec: Number(values.duration ?? (quick ? 1 : 10)),
    repeats: Number(values.repeats ?? (quick ? 1 : 3)),
    connections: Number(values.connections),
    warmupSec: quick ? 1 : 3,
    out: values.out as string,
  }
}

function median<T>(items: T[], key: (item: T) => number): T {
  const sorted = [...items].sort((a, b) => key(a) - key(b))
  return sorted[Math.floor(sorted.length / 2)] as T
}

async function runCase(bench: BenchCase, shared: { upstreamPort: number; issuer: BenchIssuer; dir: string }, options: BenchOptions): Promise<CaseResult> {
  const running = await bench.start({ ...shared, quick: options.quick })
  try {
    const load = { url: running.url, connections: options.connections, headers: running.headers, tokensFile: running.tokensFile }
    await runLoad({ ...load, durationSec: options.warmupSec })
    const runs: Array<LoadResult & { cpuMicrosPerRequest: number }> = []
    for (let i = 0; i < options.repeats; i++) {
      const pid = running.measured.child.pid as number
      const cpuBefore = cpuMicros(pid)
      const result = await runLoad({ ...load, durationSec: options.durationSec })
      const cpu = cpuMicros(pid) - cpuBefore
      runs.push({ ...result, cpuMicrosPerRequest: result.requests > 0 ? cpu / result.requests : 0 })
    }
    return { id: bench.id, title: bench.title, runs, median: median(runs, (r) => r.rps) }
  } finally {
    await running.stop()
  }
}

export function markdownTable(results: CaseResult[], baselineId = 'upstream'): string {
  const baseline = results.find((r) => r.id === baselineId)?.median.rps
  const lines = [
    '| case | req/s | p50 ms | p99 ms | CPU µs/req | × upstream | errors |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ]
  for (const r of results) {
    const m = r.median
    const ratio = baseline ? (m.rps / baseline).toFixed(2) : '–'
    lines.push(`| ${r.title} | ${Math.round(m.rps)} | ${m.p50ms.toFixed(2)} | ${m.p99ms.toFixed(2)} | ${m.cpuMicrosPerRequest.toFixed(1)} | ${ratio} | ${m.errors} |`)
  }
  return lines.join('\n')
}

export async function runBench(options: BenchOptions): Promise<CaseResult[]> {
  const selected = options.cases ? CASES.filter((c) => options.cases?.includes(c.id)) : CASES
  const upstream = await startUpstream()
  const issuer = await startBenchIssuer()
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-bench-'))
  const results: CaseResult[] = []
  try {
    for (const bench of selected) {
      process.stderr.write(`running ${bench.title}…\n`)
      results.push(await runCase(bench, { upstreamPort: upstream.port, issuer, dir }, options))
    }
  } finally {
    await upstream.stop()
    await issuer.close()
    await rm(dir, { recursive: true, force: true })
  }
  return results
}

export function routerTable(rows: RouterRow[]): string {
  return [
    '| routes | load: parse + validate + compile (ms) | match (ns) | 404 (ns) | find-my-way match (ns) |',
    '|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.routes} | ${r.loadMs.toFixed(1)} | ${r.matchNs.toFixed(0)} | ${r.missNs.toFixed(0)} | ${r.findMyWayNs.toFixed(0)} |`),
  ].join('\n')
}

export function verifyTable(rows: VerifyRow[]): string {
  return [
    '| token verification | CPU µs per token | wall µs per token, one at a time |',
    '|---|---:|---:|',
    ...rows.map((r) => `| ${r.case} | ${r.cpuMicrosPerToken.toFixed(1)} | ${r.wallMicrosPerToken.toFixed(1)} |`),
  ].join('\n')
}

export function accessTable(rows: AccessRow[]): string {
  const base = rows[0]?.decisionNs ?? 1
  return [
    '| statements | routes | compile (ms) | decision (ns) | × the 10-statement cost |',
    '|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.statements} | ${r.routes} | ${r.compileMs.toFixed(1)} | ${r.decisionNs.toFixed(0)} | ${(r.decisionNs / base).toFixed(2)} |`),
  ].join('\n')
}

export function limitsTable(l: { memory: { nsPerRequest: number }; redis: { checksPerSec: number }; accuracy: Awaited<ReturnType<typeof benchRedisAccuracy>> }): string {
  const a = l.accuracy
  return [
    '| measurement | result |',
    '|---|---:|',
    `| memory store: the limit stage per request (2 limits, 1,000 principals) | ${(l.memory.nsPerRequest / 1000).toFixed(2)} µs |`,
    `| Redis store: checks/s from one process, 64 in flight | ${Math.round(l.redis.checksPerSec)} |`,
    `| 3 gateways sharing Redis, one key, ${a.rate}/s burst ${a.burst} for ${a.seconds} s: admitted / expected | ${a.admitted} / ${a.expected} (${a.errorPercent >= 0 ? '+' : ''}${a.errorPercent.toFixed(2)}%) |`,
  ].join('\n')
}

export function secretsTable(s: { assertion: AssertionCost; rotation: RotationPickup }): string {
  const sorted = [...s.rotation.pickupMs].sort((a, b) => a - b)
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0
  return [
    '| measurement | result |',
    '|---|---:|',
    `| X-Bouncer-Assertion, cache hit (1,000 principals) | ${s.assertion.cachedNs.toFixed(0)} ns |`,
    `| X-Bouncer-Assertion, cache miss (ES256 signature) | ${s.assertion.signMicros.toFixed(1)} µs |`,
    `| rotated credential in use (refresh_interval ${s.rotation.refreshIntervalMs / 1000}s), ${s.rotation.rotations} rotations: median / max | ${median.toFixed(0)} ms / ${(sorted.at(-1) ?? 0).toFixed(0)} ms |`,
    `| requests failed during those rotations | ${s.rotation.failed} of ${s.rotation.requests} |`,
  ].join('\n')
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2))
  const results = await runBench(options)
  const router = benchRouter(options.quick ? [10, 1_000] : [10, 100, 1_000, 10_000])
  const verification = await benchVerification(options.quick)
  const access = benchAccess()
  const audit = { recordLine: benchRecordLine(options.quick), sqlite: await benchSqliteSink(options.quick) }
  const limits = {
    memory: await benchMemoryLimits(options.quick),
    redis: await benchRedisStore(options.quick ? 1 : 5),
    accuracy: await benchRedisAccuracy(options.quick ? 2 : 10),
  }
  const secrets = { assertion: benchAssertion(options.quick), rotation: await benchRotationPickup(options.quick) }
  const table = `${markdownTable(results)}\n\nRouter (in process, no network):\n\n${routerTable(router)}\n\n` +
    `Token verification (in process, one at a time, no network):\n\n${verifyTable(verification)}\n\n` +
    `Access decision (in process; 3 roles held):\n\n${accessTable(access)}\n\n` +
    `Limits:\n\n${limitsTable(limits)}\n\n` +
    `Secrets and assertions:\n\n${secretsTable(secrets)}\n\n` +
    `Audit (in process):\n\n| measurement | result |\n|---|---:|\n` +
    `| request thread: one finished request → its audit line | ${audit.recordLine.microsPerRecord.toFixed(2)} µs |\n` +
    `| audit worker: parse + chain (SHA-256) + SQLite, batches of ${audit.sqlite.batch} | ${Math.round(audit.sqlite.recordsPerSec)} records/s |`
  const header = `Bouncer benchmark — ${new Date().toISOString()}\n\n` +
    `${CORES} cores; servers pinned to core ${SERVER_CORE ?? 'any'}, load on core ${LOAD_CORE ?? 'any'}; ` +
    `${options.connections} connections, ${options.durationSec}s × ${options.repeats} after ${options.warmupSec}s warm-up; ` +
    `load generator: ${results[0]?.median.tool ?? 'n/a'}${options.quick ? ' (quick mode: not a measurement)' : ''}\n`
  console.log(`${header}\n${table}`)
  await mkdir(options.out, { recursive: true })
  const name = options.quick ? 'quick' : 'latest'
  await writeFile(join(options.out, `${name}.json`), JSON.stringify({ date: new Date().toISOString(), options, results, router, verification, access, limits, secrets, audit }, null, 2))
  await writeFile(join(options.out, `${name}.md`), `${header}\n${table}\n`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
