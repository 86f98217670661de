// npm run bench [-- --quick] [--sources] [--cases a,b] [--sweeps routes,statements,principals|none]
//                  [--skip micro] [--duration S] [--warmup S] [--repeats N] [--connections N] [--out DIR]
//                  [--profile CASE]
//
// Each case runs after a warm-up for a fixed duration at a fixed concurrency, repeated; the median
// run is reported with the CPU the measured process spent per request (from /proc), its ratio to
// the upstream alone (a), nginx (b) and fastify (e), then the scaling sweeps, the in-process
// micro-benchmarks, and the targets with a pass or a miss.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { CASES, CaseSkipped, OPT_IN_CASES, startUpstream, useCompiledBuild, type BenchCase, type RunningCase } from './cases.ts'
import { summarise } from './profile-summary.ts'
import { runSweep, type SweepName, type SweepPoint } from './sweep.ts'
import { targetsTable } from './targets.ts'
import { benchAccess, type AccessRow } from './access.ts'
import { benchRecordLine, benchSqliteSink } from './audit.ts'
import { benchDatasets, datasetsTable } from './datasets.ts'
import { benchFrontDoor, frontDoorTables } from './front-door.ts'
import { benchMcp, mcpTable } from './mcp.ts'
import { benchHostileTokens, hostileTable } from './hostile-tokens.ts'
import { benchVerification, type VerifyRow } from './identity.ts'
import { benchMemoryLimits, benchRedisAccuracy, benchRedisStore } from './limits.ts'
import { benchLru, type LruRow } from './lru.ts'
import { benchRouter, type RouterRow } from './router.ts'
import { benchAssertion, benchRotationPickup, type AssertionCost, type RotationPickup } from './secrets.ts'
import { startBenchIssuer, type BenchIssuer } from './lib/issuer.ts'
import { measureLoad, medianRun, type Measured } from './lib/load.ts'
import { CORES, LOAD_CORE, SERVER_CORE, treeRssBytes } from './lib/processes.ts'
import type { CaseResult } from './results.ts'

export interface BenchOptions {
  quick: boolean
  cases: string[] | null
  durationSec: number
  repeats: number
  connections: number
  warmupSec: number
  sweeps: SweepName[]
  micro: boolean
  /** TLS and HTTP/2 against nginx with TLS (front-door.ts): unless --skip front-door, or --cases without it. */
  frontDoor: boolean
  /** Rows/s from PostgreSQL through a dataset route against psql's \copy (datasets.ts): unless --skip datasets, or --cases without it. */
  datasets: boolean
  /** MCP tool calls vs HTTP, and aggregation (mcp.ts): unless --skip mcp, or --cases without it. */
  mcp: boolean
  profile: string | null
  /** Run the gateway from src/ instead of the compiled build (quick mode always does). */
  sources: boolean
  out: string
}

const SWEEPS: SweepName[] = ['routes', 'statements', 'principals']

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      cases: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      repeats: { type: 'string' },
      connections: { type: 'string', default: '50' },
      sweeps: { type: 'string' },
      skip: { type: 'string' },
      profile: { type: 'string' },
      sources: { type: 'boolean', default: false },
      out: { type: 'string', default: fileURLToPath(new URL('./results', import.meta.url)) },
    },
  })
  const quick = values.quick === true
  const sweeps = values.sweeps === 'none' ? [] : values.sweeps ? values.sweeps.split(',') : SWEEPS
  for (const sweep of sweeps) if (!SWEEPS.includes(sweep as SweepName)) throw new UsageError(`unknown sweep "${sweep}" (routes, statements, principals or none)`)
  const skip = values.skip ? values.skip.split(',') : []
  const warmupSec = Number(values.warmup ?? (quick ? 1 : 5))
  if (!Number.isInteger(warmupSec) || warmupSec < 0) throw new UsageError(`--warmup takes whole seconds, 0 or more (wrk's durations are whole seconds): "${values.warmup}"`)
  return {
    quick,
    cases: values.cases ? values.cases.split(',') : null,
    durationSec: Number(values.duration ?? (quick ? 1 : 10)),
    repeats: Number(values.repeats ?? (quick ? 1 : 3)),
    connections: Number(values.connections),
    warmupSec,
    sweeps: sweeps as SweepName[],
    micro: !skip.includes('micro'),
    frontDoor: !skip.includes('front-door') && (!values.cases || values.cases.split(',').includes('front-door')),
    datasets: !skip.includes('datasets') && (!values.cases || values.cases.split(',').includes('datasets')),
    mcp: !skip.includes('mcp') && (!values.cases || values.cases.split(',').includes('mcp')),
    profile: values.profile ?? null,
    sources: quick || values.sources === true,
    out: values.out as string,
  }
}

export class UsageError extends Error {}

const NOT_RUN: Measured = { tool: 'wrk', requests: 0, rps: 0, p50ms: 0, p99ms: 0, bytesPerSec: 0, errors: 0, cpuMicrosPerRequest: 0 }

function measure(running: RunningCase, options: BenchOptions, durationSec: number): Promise<Measured> {
  const { url, headers, tokensFile } = running
  return measureLoad(running.measured.child.pid as number, { url, headers, tokensFile, connections: running.connections ?? options.connections, durationSec })
}

/**
 * One case at a time: start it, warm it up, measure it `repeats` times, stop it. (Round-robin over
 * cases that all stay up was tried: the idle proxies' keep-alive connections to the shared
 * upstream, ~1,000 of them, made every later round 20-50% slower, the upstream alone included.)
 */
async function runCase(bench: BenchCase, shared: { upstreamPort: number; issuer: BenchIssuer; dir: string }, options: BenchOptions): Promise<CaseResult> {
  let running: RunningCase
  try {
    running = await bench.start({ ...shared, quick: options.quick })
  } catch (err) {
    if (!(err instanceof CaseSkipped)) throw err
    return { id: bench.id, title: bench.title, group: bench.group, runs: [], median: NOT_RUN, skipped: err.message }
  }
  let result: CaseResult
  let responses = 0
  try {
    if (options.warmupSec > 0) responses += (await measure(running, options, options.warmupSec)).requests
    const runs: Measured[] = []
    for (let i = 0; i < options.repeats; i++) runs.push(await measure(running, options, options.durationSec))
    responses += runs.reduce((sum, run) => sum + run.requests, 0)
    result = { id: bench.id, title: bench.title, group: bench.group, runs, median: medianRun(runs), rssMb: treeRssBytes(running.measured.child.pid as number) / 2 ** 20 }
  } finally {
    await running.stop()
  }
  // Issue 15: every answered request has its record once the gateway has drained (wrk counts only
  // the responses it read, so there may be more records, never fewer).
  if (running.auditDb) {
    const records = countAuditRecords(running.auditDb)
    result.audit = { records, responses }
    if (records < responses) process.stderr.write(`${bench.id}: ${responses - records} audit records missing (${records} for ${responses} responses)\n`)
  }
  return result
}

function countAuditRecords(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 })
  try {
    return (db.prepare('SELECT count(*) AS n FROM audit_records').get() as { n: number }).n
  } finally {
    db.close()
  }
}

const ratio = (value: number, base: number | undefined) => (base ? `${(value / base).toFixed(2)}` : '–')

/** The 1 KB cases: req/s, latency, CPU per request, and the ratio to (a), (b) and (e). */
export function markdownTable(results: CaseResult[]): string {
  const main = results.filter((r) => r.group === 'main')
  const base = (id: string) => main.find((r) => r.id === id && !r.skipped)?.median.rps
  const [a, b, e] = [base('upstream'), base('nginx'), base('fastify')]
  const lines = [
    '| case | req/s | p50 ms | p99 ms | CPU µs/req | RSS MB | × (a) upstream | × (b) nginx | × (e) fastify | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const r of main) {
    const m = r.median
    if (r.skipped) lines.push(`| ${r.title} | skipped: ${r.skipped} | | | | | | | | |`)
    else lines.push(`| ${r.title} | ${Math.round(m.rps)} | ${m.p50ms.toFixed(2)} | ${m.p99ms.toFixed(2)} | ${m.cpuMicrosPerRequest.toFixed(1)} | ${r.rssMb?.toFixed(0) ?? '–'} | ${ratio(m.rps, a)} | ${ratio(m.rps, b)} | ${ratio(m.rps, e)} | ${m.errors} |`)
  }
  const audited = main.filter((r) => r.audit)
  if (audited.length > 0) lines.push('', `Audit records after each audited case, all written: ${audited.map((r) => `${r.id} ${r.audit?.records} for ${r.audit?.responses} responses`).join('; ')}.`)
  return lines.join('\n')
}

/** The 1 MB cases: MB/s through each proxy. */
export function streamTable(results: CaseResult[]): string {
  const stream = results.filter((r) => r.group === 'stream')
  if (stream.length === 0) return ''
  const mbps = (r: CaseResult) => r.median.bytesPerSec / 2 ** 20
  const nginx = stream.find((r) => r.id === 'nginx-1mb' && !r.skipped)
  const lines = ['| case (1 MB responses) | MB/s | req/s | p99 ms | CPU µs/req | × nginx | errors |', '|---|---:|---:|---:|---:|---:|---:|']
  for (const r of stream) {
    if (r.skipped) lines.push(`| ${r.title} | skipped: ${r.skipped} | | | | | |`)
    else lines.push(`| ${r.title} | ${mbps(r).toFixed(0)} | ${Math.round(r.median.rps)} | ${r.median.p99ms.toFixed(2)} | ${r.median.cpuMicrosPerRequest.toFixed(0)} | ${ratio(mbps(r), nginx ? mbps(nginx) : undefined)} | ${r.median.errors} |`)
  }
  return lines.join('\n')
}

export function sweepTable(points: SweepPoint[]): string {
  const lines = ['| sweep | value | req/s | × first point | p50 ms | p99 ms | CPU µs/req | RSS MB | peak RSS MB | errors |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
  for (const p of points) {
    const first = points.find((q) => q.sweep === p.sweep)?.rps
    lines.push(`| ${p.sweep} | ${p.value.toLocaleString('en-US')} | ${Math.round(p.rps)} | ${ratio(p.rps, first)} | ${p.p50ms.toFixed(2)} | ${p.p99ms.toFixed(2)} | ${p.cpuMicrosPerRequest.toFixed(1)} | ${p.rssMb.toFixed(0)} | ${p.peakRssMb.toFixed(0)} | ${p.errors} |`)
  }
  return lines.join('\n')
}

export async function runBench(options: BenchOptions): Promise<{ results: CaseResult[]; sweeps: SweepPoint[] }> {
  const selected = options.cases ? [...CASES, ...OPT_IN_CASES].filter((c) => options.cases?.includes(c.id)) : CASES
  if (!options.sources) useCompiledBuild()
  const upstream = await startUpstream()
  const issuer = await startBenchIssuer()
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-bench-'))
  const results: CaseResult[] = []
  const sweeps: SweepPoint[] = []
  try {
    for (const bench of selected) {
      process.stderr.write(`running ${bench.title}…\n`)
      results.push(await runCase(bench, { upstreamPort: upstream.port, issuer, dir }, options))
    }
    for (const sweep of options.sweeps) {
      process.stderr.write(`sweeping ${sweep}…\n`)
      const load = { connections: options.connections, durationSec: options.quick ? 1 : Math.min(options.durationSec, 5), warmupSec: options.warmupSec, repeats: options.repeats }
      sweeps.push(...(await runSweep(sweep, { upstreamPort: upstream.port, issuer, dir, quick: options.quick }, load)))
    }
  } finally {
    await upstream.stop()
    await issuer.close()
    await rm(dir, { recursive: true, force: true })
  }
  return { results, sweeps }
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

export function lruTable(rows: LruRow[]): string {
  return [
    '| LRU operation (800-character keys) | linked list (src/collections/lru.ts) | Map, delete + set on every hit |',
    '|---|---:|---:|',
    ...rows.map((r) => `| ${r.workload} | ${r.linkedNs.toFixed(0)} ns | ${r.mapNs.toFixed(0)} ns |`),
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

async function micro(options: BenchOptions) {
  return {
    router: benchRouter(options.quick ? [10, 1_000] : [10, 100, 1_000, 10_000], options.quick),
    verification: await benchVerification(options.quick),
    hostileTokens: await benchHostileTokens(options.quick),
    access: benchAccess(options.quick),
    audit: { recordLine: benchRecordLine(options.quick), sqlite: await benchSqliteSink(options.quick) },
    limits: {
      memory: await benchMemoryLimits(options.quick),
      redis: await benchRedisStore(options.quick ? 1 : 5),
      accuracy: await benchRedisAccuracy(options.quick ? 2 : 10),
    },
    secrets: { assertion: benchAssertion(options.quick), rotation: await benchRotationPickup(options.quick) },
    lru: benchLru(options.quick),
  }
}

function microTables(m: Awaited<ReturnType<typeof micro>>): string {
  return `Router (in process, no network):\n\n${routerTable(m.router)}\n\n` +
    `Token verification (in process, one at a time, no network):\n\n${verifyTable(m.verification)}\n\n` +
    `Hostile tokens, none validly signed (in process; \`node bench/hostile-tokens.ts\` runs this table alone):\n\n${hostileTable(m.hostileTokens)}\n\n` +
    `Access decision (in process; 3 roles held):\n\n${accessTable(m.access)}\n\n` +
    `Limits:\n\n${limitsTable(m.limits)}\n\n` +
    `Secrets and assertions:\n\n${secretsTable(m.secrets)}\n\n` +
    `The request path's LRU (token and assertion caches; \`node bench/lru.ts\` runs this table alone):\n\n${lruTable(m.lru)}\n\n` +
    `Audit (in process):\n\n| measurement | result |\n|---|---:|\n` +
    `| request thread: one finished request → its audit line | ${m.audit.recordLine.microsPerRecord.toFixed(2)} µs |\n` +
    `| audit worker: parse + chain (SHA-256) + SQLite, batches of ${m.audit.sqlite.batch} | ${Math.round(m.audit.sqlite.recordsPerSec)} records/s |`
}

/** `--profile CASE`: one run of that case with the measured process under --cpu-prof, then its hottest functions. */
async function profileCase(options: BenchOptions, id: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-prof-'))
  process.env.BENCH_CPU_PROF_DIR = dir
  try {
    await runBench({ ...options, cases: [id], repeats: 1, sweeps: [] })
    const profiles = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'))
    if (profiles.length === 0) throw new Error(`no profile written for ${id} (is it a Node process?)`)
    console.log(`Hottest functions of ${id} (self time, whole run incl. warm-up):\n`)
    console.log(summarise(join(dir, profiles[0] as string), 40))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  let options: BenchOptions
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`)
    process.exit(2)
  }
  if (options.profile) return profileCase(options, options.profile)
  const { results, sweeps } = await runBench(options)
  const frontDoor = options.frontDoor
    ? await benchFrontDoor({ quick: options.quick, durationSec: options.quick ? 1 : Math.min(options.durationSec, 5), repeats: options.repeats, warmupSec: options.warmupSec, connections: options.connections })
    : null
  const datasets = options.datasets ? await benchDatasets({ quick: options.quick, repeats: options.repeats }) : null
  const mcp = options.mcp ? await benchMcp({ durationSec: options.quick ? 1 : Math.min(options.durationSec, 5), connections: Math.min(options.connections, 10) }) : null
  const m = options.micro ? await micro(options) : null
  const es256 = m?.verification.find((r) => r.case.startsWith('ES256, cold'))?.cpuMicrosPerToken ?? null
  const sections = [
    `${markdownTable(results)}`,
    streamTable(results) && `Streaming (1 MB responses):\n\n${streamTable(results)}`,
    sweeps.length > 0 && `Scaling sweeps over (d) (each point its own gateway; median of ${options.repeats} × ${options.quick ? 1 : Math.min(options.durationSec, 5)}s after warm-up):\n\n${sweepTable(sweeps)}`,
    `Targets:\n\n${targetsTable({ results, sweeps, es256VerifyMicros: es256 })}`,
    frontDoor && `The front door: TLS and HTTP/2, against nginx terminating TLS (\`node bench/front-door.ts\` runs this alone):\n\n${frontDoorTables(frontDoor)}`,
    datasets && `Datasets: rows/s from PostgreSQL through a dataset route, against psql (\`node bench/datasets.ts\` runs this alone):\n\n${datasetsTable(datasets)}`,
    mcp && `MCP: tools/call through the gateway (\`node bench/mcp.ts\` runs this alone):\n\n${mcpTable(mcp)}`,
    m && microTables(m),
  ].filter(Boolean)
  const table = sections.join('\n\n')
  const header = `Bouncer benchmark — ${new Date().toISOString()}\n\n` +
    `${CORES} cores; servers pinned to core ${SERVER_CORE ?? 'any'}, load on core ${LOAD_CORE ?? 'any'}; ` +
    `${options.connections} connections, ${options.durationSec}s × ${options.repeats} after ${options.warmupSec}s warm-up; ` +
    `load generator: ${results.find((r) => !r.skipped)?.median.tool ?? 'n/a'}; gateway from ${options.sources ? 'the sources (src/)' : 'the compiled build (dist/)'}; Node ${process.version}${options.quick ? ' (quick mode: not a measurement)' : ''}\n`
  console.log(`${header}\n${table}`)
  await mkdir(options.out, { recursive: true })
  const name = options.quick ? 'quick' : 'latest'
  await writeFile(join(options.out, `${name}.json`), JSON.stringify({ date: new Date().toISOString(), node: process.version, cores: CORES, options, results, sweeps, frontDoor, datasets, mcp, ...m }, null, 2))
  await writeFile(join(options.out, `${name}.md`), `${header}\n${table}\n`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
