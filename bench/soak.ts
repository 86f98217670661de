// npm run soak [-- --minutes 20] [--rate 300] [--workers N] [--sources] [--out FILE]
//
// A soak run: the compiled gateway (as the bench starts it) under steady mixed traffic for a long
// time, to see that memory, file descriptors and threads do not grow. One config exercises much at
// once: JWT callers (the bench's local issuer; 2,000 distinct tokens in rotation, some expired,
// some forged), API keys, the SQLite audit, memory rate limits (one caller far over its limit:
// 429), an HTTP upstream, a PostgreSQL dataset (its own schema in db `test`), a function, denials
// (403, 401), clients that go mid-body and mid-response, fresh connections beside keep-alive ones,
// and the admin API read every sample. Every 30 s a reload (SIGHUP after rewriting the config: a
// limit's rate changes and a route is added or removed, alternately). Every 10 s a sample row:
// VmRSS, VmHWM, open fds, threads (/proc) and the heap used, event-loop lag and active handles
// (/metrics). At the end the gateway is stopped with SIGTERM, the audit log's rows are counted
// against the responses the client got (never fewer), `bouncer audit verify` runs on it, and a
// verdict: the RSS slope over the second half (least squares, MB per 10 min), fd and thread growth.
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { Agent, request, type IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { stringify } from 'yaml'
import { newApiKey } from '../src/identity/api-keys/key.ts'
import { openSqliteKeyStore } from '../src/identity/api-keys/sqlite-store.ts'
import { startBouncer, startUpstream, useCompiledBuild } from './cases.ts'
import { BENCH_AUDIENCE, startBenchIssuer } from './lib/issuer.ts'
import { rssBytes } from './lib/processes.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const POSTGRES = process.env.BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    minutes: { type: 'string', default: '20' },
    rate: { type: 'string', default: '300' },
    workers: { type: 'string', default: '0' },
    sample: { type: 'string', default: '10' },
    reload: { type: 'string', default: '30' },
    sources: { type: 'boolean', default: false },
    out: { type: 'string' },
    mix: { type: 'string' },
  },
})
const MINUTES = Number(values.minutes)
const RATE = Number(values.rate)
const WORKERS = Number(values.workers)
const SAMPLE_MS = Number(values.sample) * 1000
const RELOAD_MS = Number(values.reload) * 1000
const started = new Date()
const OUT = values.out ?? join(ROOT, 'bench/results/soak', `${started.toISOString().slice(0, 16).replace(':', '')}${WORKERS > 0 ? `-workers-${WORKERS}` : ''}.md`)

const lines: string[] = []
function say(line: string): void {
  lines.push(line)
  process.stdout.write(`${line}\n`)
}

// --- setup -------------------------------------------------------------------------------------

if (!values.sources) useCompiledBuild()
const dir = await mkdtemp(join(tmpdir(), 'bouncer-soak-'))
const upstream = await startUpstream()
// A run that fails leaves nothing behind: the gateway (once started) and the upstream are stopped.
let gatewayChild: { kill(signal: NodeJS.Signals): boolean } | null = null
const leaveNothing = (err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`)
  gatewayChild?.kill('SIGKILL')
  upstream.child.kill('SIGKILL')
  process.exit(1)
}
process.on('uncaughtException', leaveNothing)
process.on('unhandledRejection', leaveNothing)
const issuer = await startBenchIssuer()
const schema = `bouncer_soak_${process.pid}`
const db = new pg.Client({ connectionString: POSTGRES })
await db.connect()
await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema};
  CREATE TABLE ${schema}.items (id int PRIMARY KEY, name text NOT NULL, amount numeric NOT NULL);
  INSERT INTO ${schema}.items SELECT g, 'item-' || g, g * 1.5 FROM generate_series(1, 500) g;`)

const keysDb = join(dir, 'api-keys.db')
const keyStore = openSqliteKeyStore(keysDb)
const apiKeys: string[] = []
for (let i = 0; i < 20; i++) {
  const created = newApiKey()
  await keyStore.insert({ id: created.id, principal: `svc-key-${i}`, description: 'soak', hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null })
  apiKeys.push(created.key)
}
await keyStore.close()

// 2,000 callers in rotation (more than fit a small cache, fewer than would make every request a
// miss), one far over its limit, expired ones, and forged ones (a valid token with its signature changed).
const tokens = await issuer.mint(2_000, 'ES256')
const [limitedToken] = await issuer.mint(1, 'ES256', () => ({ sub: 'svc-limited' }))
const expired = await issuer.mint(50, 'ES256', (i) => ({ sub: `svc-old-${i}`, exp: Math.floor(Date.now() / 1000) - 60 - i }))
const forged = tokens.slice(0, 50).map((t) => `${t.slice(0, -6)}${t.slice(-6) === 'AAAAAA' ? 'BBBBBB' : 'AAAAAA'}`)

const ADMIN_TOKEN = randomBytes(32).toString('hex')
const auditDb = join(dir, 'audit.db')

function config(generation: number): Record<string, unknown> {
  const odd = generation % 2 === 1
  return {
    server: { listen: '127.0.0.1:0', ...(WORKERS > 0 ? { workers: WORKERS } : {}) },
    admin: { listen: '127.0.0.1:0', token: '${env:SOAK_ADMIN_TOKEN}' },
    audit: { sinks: [{ type: 'sqlite', path: auditDb }], spill_dir: join(dir, 'spill') },
    api_keys: { store: { type: 'sqlite', path: keysDb } },
    issuers: [{ name: 'bench', issuer: issuer.issuer, audiences: [BENCH_AUDIENCE], algorithms: ['ES256'] }],
    roles: [{ name: 'service', assumed_by: [{ issuer: 'bench', subject: 'svc-*' }, { issuer: 'api-keys', subject: 'svc-*' }], policies: ['service'] }],
    policies: [{ name: 'service', statements: [{ sid: 'Service', effect: 'allow', actions: ['GET', 'POST'], routes: ['api.*', 'data.*', 'fn.*', 'keyed', 'limited', 'big'] }] }],
    limits: [
      { name: 'per-principal', key: 'principal', rate: '1000/s', burst: 1000 },
      // The reload's change: 5/s and 6/s alternately.
      { name: 'tight', key: 'principal', rate: `${odd ? 6 : 5}/s`, burst: 10 },
    ],
    limits_store: { type: 'memory', max_keys: 10_000 },
    datasources: [{ name: 'pg', type: 'postgres', url: POSTGRES, max_connections: 4, key: '${env:SOAK_DATASET_KEY}' }],
    functions: [{ name: 'echo', module: join(ROOT, 'bench/functions/echo.mjs'), concurrency: 8 }],
    upstreams: [{ name: 'api', url: `http://127.0.0.1:${upstream.port}`, max_connections: 64 }],
    routes: [
      { id: 'api.read', methods: ['GET', 'POST'], path: '/api/*', upstream: 'api', limits: ['per-principal'] },
      { id: 'keyed', methods: ['GET'], path: '/keyed/*', upstream: 'api', accept: ['api_key'], limits: ['per-principal'] },
      { id: 'limited', methods: ['GET'], path: '/limited', upstream: 'api', limits: ['tight'] },
      { id: 'big', methods: ['GET'], path: '/big', upstream: 'api', upstream_path: '/1mb' },
      { id: 'secret.vault', methods: ['GET'], path: '/secret/*', upstream: 'api' },
      { id: 'public', methods: ['GET'], path: '/public/*', upstream: 'api', public: true },
      { id: 'fn.echo', methods: ['POST'], path: '/fn', function: 'echo' },
      { id: 'data.items', methods: ['GET'], path: '/data/items', dataset: { source: 'pg', sql: `SELECT id, name, amount FROM ${schema}.items WHERE id <= :n ORDER BY id`, params: { n: { type: 'int', default: 50, min: 1, max: 500 } }, page_size: 100 } },
      // The reload's other change: a route there on odd generations only.
      ...(odd ? [{ id: 'extra', methods: ['GET'], path: '/extra/*', upstream: 'api', public: true }] : []),
    ],
  }
}

const env = { SOAK_ADMIN_TOKEN: ADMIN_TOKEN, SOAK_DATASET_KEY: randomBytes(32).toString('hex'), BOUNCER_LOG_LEVEL: 'warn' }
const gateway = await startBouncer(config(0), env, { startTimeoutMs: 60_000 })
gatewayChild = gateway.child
const configFile = join(gateway.dir, 'bouncer.yaml')
const pid = gateway.child.pid as number
// With server.workers the admin listener's line comes after the gateway's.
let adminUrl: string | undefined
for (let i = 0; i < 200 && !(adminUrl = /admin listening on (\S+)/.exec(gateway.output())?.[1]); i++) await new Promise((r) => setTimeout(r, 50))
if (!adminUrl) throw new Error(`no admin address in the gateway's output:\n${gateway.output()}`)
const base = new URL(gateway.url)
const t0 = performance.now()
// A gateway that ends on its own (a crash, a signal from elsewhere) ends the run: said, with its output.
let died: { code: number | null; signal: string | null; minutes: number } | null = null
gateway.child.once('exit', (code, signal) => {
  died = { code, signal, minutes: (performance.now() - t0) / 60_000 }
})

say(`# Soak run ${started.toISOString()}`)
say('')
say(`\`npm run soak -- --minutes ${MINUTES} --rate ${RATE}${WORKERS > 0 ? ` --workers ${WORKERS}` : ''}${values.sources ? ' --sources' : ''}${values.mix ? ` --mix ${values.mix}` : ''}\`: gateway pid ${pid} from ${process.env.BENCH_GATEWAY_ROOT ? `${process.env.BENCH_GATEWAY_ROOT}'s ` : ''}${values.sources ? 'src/' : 'dist/'}${process.env.MALLOC_ARENA_MAX ? ` (MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX})` : ''}${WORKERS > 0 ? `, server.workers: ${WORKERS}` : ''}, NODE_OPTIONS of the bench; sample every ${SAMPLE_MS / 1000} s, reload every ${RELOAD_MS / 1000} s. Host: ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')} load average before.`)
say('')

// --- the client --------------------------------------------------------------------------------

// The agent's own timeout is what makes it honour the gateway's `Keep-Alive: timeout=5`: Node's
// Agent only lowers a timeout it has to the hint less 1 s (keepSocketAlive), and without one it kept
// idle sockets for good; the gateway closes one after 6 s, and a request sent on it as the close
// crossed was reset (ECONNRESET, no record: 10 in a 6-minute run, each on a socket idle 6.0-6.1 s).
const keepAlive = new Agent({ keepAlive: true, maxSockets: 64, timeout: 30_000 })
// When each kept-alive socket went back to the pool: a request reset on a reused socket says how
// long that socket had been idle (the agent drops one at the gateway's Keep-Alive timeout less 1 s).
const freedAt = new WeakMap<object, number>()
keepAlive.on('free', (socket: object) => freedAt.set(socket, performance.now()))
/** Resets before any response, by connection: reused keep-alive ones (their idle ms at the send) and new ones. */
const resets = { reusedIdleMs: [] as number[], fresh: 0 }
/** The client's own longest stall: the longest gap between two of its traffic ticks (10 ms apart when it runs freely). */
let clientStallMs = 0
let stallSinceSample = 0
const byStatus = new Map<string, number>()
const byKind = new Map<string, Map<string, number>>()
let responses = 0
let sent = 0
let inFlight = 0
let skipped = 0
const MAX_IN_FLIGHT = 256

function count(kind: string, outcome: string): void {
  byStatus.set(outcome, (byStatus.get(outcome) ?? 0) + 1)
  let kindMap = byKind.get(kind)
  if (!kindMap) byKind.set(kind, (kindMap = new Map()))
  kindMap.set(outcome, (kindMap.get(outcome) ?? 0) + 1)
}

interface Shot {
  kind: string
  method: string
  path: string
  headers?: Record<string, string>
  body?: Buffer
  /** `body`: send part of a declared body, then go; `response`: read the first chunk, then go. */
  abort?: 'body' | 'response'
}

let turn = 0
const pick = <T>(list: readonly T[]): T => list[turn % list.length] as T
const bearer = (token: string | undefined) => ({ authorization: `Bearer ${token}` })
const fnBody = Buffer.from(JSON.stringify({ hello: 'soak', items: Array.from({ length: 20 }, (_, i) => i) }))

/** The traffic mix, by weight out of 100. */
const FULL_MIX: Array<[number, string, () => Shot]> = [
  [34, 'jwt', () => ({ kind: 'jwt GET upstream', method: 'GET', path: `/api/orders/${turn % 1000}?q=${turn}`, headers: bearer(pick(tokens)) })],
  [4, 'post', () => ({ kind: 'jwt POST upstream', method: 'POST', path: '/api/orders', headers: { ...bearer(pick(tokens)), 'content-type': 'application/json' }, body: fnBody })],
  [10, 'key', () => ({ kind: 'api key', method: 'GET', path: `/keyed/r/${turn % 100}`, headers: { 'x-api-key': pick(apiKeys) } })],
  [7, 'limit', () => ({ kind: 'over its limit', method: 'GET', path: '/limited', headers: bearer(limitedToken) })],
  [8, 'dataset', () => ({ kind: 'dataset', method: 'GET', path: `/data/items?n=${1 + (turn % 200)}`, headers: bearer(pick(tokens)) })],
  [8, 'function', () => ({ kind: 'function', method: 'POST', path: '/fn', headers: { ...bearer(pick(tokens)), 'content-type': 'application/json' }, body: fnBody })],
  [5, 'denied', () => ({ kind: 'denied 403', method: 'GET', path: `/secret/${turn % 10}`, headers: bearer(pick(tokens)) })],
  [3, 'forged', () => ({ kind: 'forged 401', method: 'GET', path: '/api/x', headers: bearer(pick(forged)) })],
  [3, 'expired', () => ({ kind: 'expired 401', method: 'GET', path: '/api/x', headers: bearer(pick(expired)) })],
  [3, 'anonymous', () => ({ kind: 'no token 401', method: 'GET', path: '/api/x' })],
  [9, 'public', () => ({ kind: 'public', method: 'GET', path: `/public/${turn % 50}` })],
  [3, 'abort-body', () => ({ kind: 'abort mid-body', method: 'POST', path: '/api/upload', headers: { ...bearer(pick(tokens)), 'content-length': '65536' }, abort: 'body' })],
  [3, 'abort-response', () => ({ kind: 'abort mid-response', method: 'GET', path: '/big', headers: bearer(pick(tokens)), abort: 'response' })],
]
// --mix jwt,public,…: only those kinds, in the same proportions to each other (to bisect a growth).
const MIX = values.mix ? FULL_MIX.filter(([, id]) => values.mix?.split(',').includes(id)) : FULL_MIX
if (MIX.length === 0) throw new Error(`--mix names none of ${FULL_MIX.map(([, id]) => id).join(', ')}`)
const MIX_TOTAL = MIX.reduce((sum, [weight]) => sum + weight, 0)

function nextShot(): Shot {
  turn++
  let at = (turn * 37) % MIX_TOTAL // a fixed interleaving, the same every run
  for (const [weight, , make] of MIX) {
    if (at < weight) return make()
    at -= weight
  }
  return (MIX[0] as [number, string, () => Shot])[2]()
}

function fire(shot: Shot): void {
  if (inFlight >= MAX_IN_FLIGHT) {
    skipped++
    return
  }
  inFlight++
  sent++
  // One request in ten on a connection of its own (opened, then closed), the rest kept alive.
  const fresh = shot.abort !== undefined || sent % 10 === 0
  let done = false
  const finish = (outcome: string) => {
    if (done) return
    done = true
    inFlight--
    count(shot.kind, outcome)
  }
  const req = request({ host: base.hostname, port: base.port, method: shot.method, path: shot.path, headers: shot.headers, agent: fresh ? false : keepAlive, timeout: 30_000 })
  let sentAt = 0
  req.once('socket', () => {
    sentAt = performance.now()
  })
  req.on('response', (res: IncomingMessage) => {
    responses++
    const status = String(res.statusCode)
    if (shot.abort === 'response') {
      res.once('data', () => {
        req.destroy()
        finish(`${status} (went mid-response)`)
      })
      res.once('end', () => finish(status))
      res.once('error', () => finish(status))
      return
    }
    res.on('data', () => {})
    res.once('end', () => finish(status))
    res.once('error', () => finish(`${status} body error`))
    res.once('aborted', () => finish(`${status} body aborted`))
  })
  req.on('timeout', () => req.destroy(new Error('client timeout')))
  req.on('error', (err: NodeJS.ErrnoException) => {
    if (shot.abort === 'body' && !done) return finish('went mid-body')
    if (err.code === 'ECONNRESET' && !done) {
      if (req.reusedSocket) resets.reusedIdleMs.push(sentAt - (freedAt.get(req.socket as object) ?? NaN))
      else resets.fresh++
      return finish(`error ECONNRESET (${req.reusedSocket ? 'reused' : 'new'} connection)`)
    }
    finish(`error ${err.code ?? err.message}`)
  })
  if (shot.abort === 'body') {
    req.write(Buffer.alloc(4096, 0x61))
    setTimeout(() => {
      if (!done) req.destroy()
    }, 20)
    return
  }
  req.end(shot.body)
}

let debt = 0
let lastTick = performance.now()
const TICK_MS = 10
const traffic = setInterval(() => {
  const now = performance.now()
  clientStallMs = Math.max(clientStallMs, now - lastTick)
  stallSinceSample = Math.max(stallSinceSample, now - lastTick)
  debt += ((now - lastTick) / 1000) * RATE
  lastTick = now
  for (; debt >= 1; debt--) fire(nextShot())
}, TICK_MS)

// --- reloads -----------------------------------------------------------------------------------

let generation = 0
let reloadsOk = 0
let reloadsFailed = 0
let reloading: Promise<void> = Promise.resolve()
const reloads = setInterval(() => {
  reloading = (async () => {
    generation++
    await writeFile(configFile, stringify(config(generation)))
    const seen = gateway.output().length
    gateway.child.kill('SIGHUP')
    // The gateway logs at warn: a refused reload says so; an applied one is silent. The routes the
    // admin API lists say it was applied: the route `extra` is there on odd generations only.
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100))
      if (/reload refused/.test(gateway.output().slice(seen))) {
        reloadsFailed++
        say(`reload ${generation} refused: ${gateway.output().slice(seen).slice(0, 400)}`)
        return
      }
      if ((await hasExtraRoute()) === (generation % 2 === 1)) {
        reloadsOk++
        return
      }
    }
    reloadsFailed++
    say(`reload ${generation}: not applied within 5 s`)
  })().catch((err: unknown) => {
    reloadsFailed++
    if (died === null) say(`reload ${generation}: ${(err as Error).message}`)
  })
}, RELOAD_MS)

async function admin(path: string): Promise<Response> {
  return fetch(`${adminUrl}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: AbortSignal.timeout(10_000) })
}

async function hasExtraRoute(): Promise<boolean> {
  return (await (await admin('/api/routes')).text()).includes('"extra"')
}

// --- samples -----------------------------------------------------------------------------------

interface Sample {
  minutes: number
  rssMb: number
  hwmMb: number
  fds: number
  threads: number
  anonMb: number
  heapMb: number
  oldMb: number
  externalMb: number
  lagP99Ms: number
  handles: number
  responses: number
  clientStallMs: number
}
const samples: Sample[] = []

function metric(text: string, name: string, label = ''): number {
  const found = new RegExp(label ? `^${name}\\{${label}\\} ([0-9.e+-]+)` : `^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, 'm').exec(text)
  return found ? Number(found[1]) : NaN
}

async function sample(): Promise<Sample> {
  const metrics = await (await admin('/metrics')).text()
  // The admin API's reads, now and then: the newest records, the overview.
  await (await admin('/api/audit?limit=50')).arrayBuffer()
  await (await admin('/api/overview')).arrayBuffer()
  const one: Sample = {
    minutes: (performance.now() - t0) / 60_000,
    rssMb: rssBytes(pid) / 2 ** 20,
    hwmMb: rssBytes(pid, 'VmHWM') / 2 ** 20,
    fds: (await readdir(`/proc/${pid}/fd`)).length,
    threads: (await readdir(`/proc/${pid}/task`)).length,
    anonMb: rssBytes(pid, 'RssAnon') / 2 ** 20,
    heapMb: metric(metrics, 'bouncer_nodejs_heap_size_used_bytes') / 2 ** 20,
    oldMb: metric(metrics, 'bouncer_nodejs_heap_space_size_used_bytes', 'space="old"') / 2 ** 20,
    externalMb: metric(metrics, 'bouncer_nodejs_external_memory_bytes') / 2 ** 20,
    lagP99Ms: metric(metrics, 'bouncer_nodejs_eventloop_lag_p99_seconds') * 1000,
    handles: metric(metrics, 'bouncer_nodejs_active_handles_total'),
    responses,
    clientStallMs: stallSinceSample,
  }
  stallSinceSample = 0
  samples.push(one)
  return one
}

say('| min | VmRSS MB | VmHWM MB | RssAnon MB | fds | threads | heap used MB | old space MB | external MB | loop lag p99 ms | handles | responses | req/s since last | client stall max ms |')
say('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
function row(s: Sample, previous: Sample | undefined): void {
  const rps = previous ? (s.responses - previous.responses) / ((s.minutes - previous.minutes) * 60) : 0
  say(`| ${s.minutes.toFixed(1)} | ${s.rssMb.toFixed(1)} | ${s.hwmMb.toFixed(1)} | ${s.anonMb.toFixed(1)} | ${s.fds} | ${s.threads} | ${s.heapMb.toFixed(1)} | ${s.oldMb.toFixed(1)} | ${s.externalMb.toFixed(1)} | ${s.lagP99Ms.toFixed(1)} | ${s.handles} | ${s.responses} | ${rps.toFixed(0)} | ${s.clientStallMs.toFixed(0)} |`)
}
row(await sample(), undefined)

const endAt = t0 + MINUTES * 60_000
while (performance.now() < endAt && died === null) {
  await new Promise((r) => setTimeout(r, Math.min(SAMPLE_MS, endAt - performance.now())))
  const previous = samples.at(-1)
  try {
    row(await sample(), previous)
  } catch (err) {
    if (died === null) throw err
  }
}

// --- the end -----------------------------------------------------------------------------------

clearInterval(traffic)
clearInterval(reloads)
await reloading // a reload under way finishes before the SIGTERM (else the gateway refuses it: shutting down)
for (let i = 0; i < 300 && inFlight > 0; i++) await new Promise((r) => setTimeout(r, 100))
keepAlive.destroy()
const last = samples.at(-1) as Sample

const diedEarly = died as { code: number | null; signal: string | null; minutes: number } | null
if (diedEarly === null) gateway.child.kill('SIGTERM')
const exitTimer = setTimeout(() => gateway.child.kill('SIGKILL'), 60_000)
const [exitCode, exitSignal] = gateway.child.exitCode !== null || gateway.child.signalCode !== null ? [gateway.child.exitCode, gateway.child.signalCode] : ((await once(gateway.child, 'exit')) as [number | null, string | null])
clearTimeout(exitTimer)

const audit = new DatabaseSync(auditDb, { readOnly: true, timeout: 5000 })
const records = (audit.prepare('SELECT count(*) AS n FROM audit_records').get() as { n: number }).n
audit.close()
const verify = spawnSync(process.execPath, [...(values.sources ? [] : ['--no-experimental-strip-types']), join(ROOT, 'bin/bouncer.js'), 'audit', 'verify', '--config', configFile], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 600_000 })

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length
  if (n < 2) return NaN
  const mx = points.reduce((s, [x]) => s + x, 0) / n
  const my = points.reduce((s, [, y]) => s + y, 0) / n
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0)
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0)
  return sxy / sxx
}
const secondHalf = samples.filter((s) => s.minutes >= MINUTES / 2)
const rssSlope = slope(secondHalf.map((s) => [s.minutes, s.rssMb])) * 10
const heapSlope = slope(secondHalf.map((s) => [s.minutes, s.heapMb])) * 10
const anonSlope = slope(secondHalf.map((s) => [s.minutes, s.anonMb])) * 10
const oldSlope = slope(secondHalf.map((s) => [s.minutes, s.oldMb])) * 10
const first = samples[0] as Sample
const warm = samples.find((s) => s.minutes >= 1) ?? first
const peakFds = Math.max(...samples.map((s) => s.fds))

say('')
say('## Verdict')
say('')
say(`- requests sent ${sent.toLocaleString('en-US')} (${(sent / (MINUTES * 60)).toFixed(0)}/s), responses ${responses.toLocaleString('en-US')}, not sent (over ${MAX_IN_FLIGHT} in flight) ${skipped}; reloads applied ${reloadsOk}, refused or late ${reloadsFailed}`)
say(`- VmRSS ${first.rssMb.toFixed(1)} MB at start, ${warm.rssMb.toFixed(1)} after 1 min, ${last.rssMb.toFixed(1)} at the end; VmHWM ${last.hwmMb.toFixed(1)} MB`)
say(`- **RSS slope over the second half: ${rssSlope.toFixed(2)} MB per 10 min** (least squares, ${secondHalf.length} samples); RssAnon ${anonSlope.toFixed(2)}; the request thread's heap used ${heapSlope.toFixed(2)} (${warm.heapMb.toFixed(1)} MB after 1 min, ${last.heapMb.toFixed(1)} at the end), its old space ${oldSlope.toFixed(2)} (${warm.oldMb.toFixed(1)} → ${last.oldMb.toFixed(1)} MB)`)
say(`- fds ${first.fds} at start, ${warm.fds} after 1 min, ${last.fds} at the end (peak ${peakFds}); threads ${first.threads} → ${warm.threads} → ${last.threads}; active handles ${warm.handles} → ${last.handles}`)
say(diedEarly
  ? `- **the gateway ended on its own at minute ${diedEarly.minutes.toFixed(1)}: exit ${exitCode ?? exitSignal}**; its last output: \`${gateway.output().trim().split('\n').slice(-5).join(' / ').slice(-1500)}\``
  : `- gateway stopped by SIGTERM: exit ${exitCode ?? exitSignal}`)
const idle = [...resets.reusedIdleMs].sort((a, b) => a - b)
say(`- ECONNRESET before any response: ${idle.length} on reused keep-alive connections${idle.length > 0 ? ` (idle at the send ${idle[0]?.toFixed(0)} / ${idle[Math.floor(idle.length / 2)]?.toFixed(0)} / ${idle.at(-1)?.toFixed(0)} ms min / median / max; the agent keeps one ${(5_000 - 1_000).toLocaleString('en-US')} ms at most, the gateway ${(5_000 + 1_000).toLocaleString('en-US')})` : ''}, ${resets.fresh} on new ones; the client's longest stall ${clientStallMs.toFixed(0)} ms`)
say(`- audit records ${records.toLocaleString('en-US')} for ${responses.toLocaleString('en-US')} responses: **${Math.max(0, responses - records)} missing**`)
say(`- \`bouncer audit verify\`: exit ${verify.status}, ${(verify.stdout + verify.stderr).trim().split('\n').slice(0, 6).join(' / ')}`)
say('')
say('What the client saw, by status (and by kind of request):')
say('')
say('| kind | outcomes |')
say('|---|---|')
for (const [kind, outcomes] of byKind) say(`| ${kind} | ${[...outcomes].map(([o, n]) => `${o}: ${n}`).join(', ')} |`)
say(`| all | ${[...byStatus].sort().map(([o, n]) => `${o}: ${n}`).join(', ')} |`)
// The gateway's log (pino, one JSON object a line): how many lines of each level, and the
// warnings and errors by message.
const levels = new Map<string, number>()
const loud = new Map<string, number>()
for (const line of gateway.output().split('\n')) {
  if (!line.startsWith('{')) continue
  try {
    const entry = JSON.parse(line) as { level?: string; msg?: string }
    const level = String(entry.level)
    levels.set(level, (levels.get(level) ?? 0) + 1)
    if (level !== 'info' && level !== 'debug') loud.set(`${level}: ${entry.msg}`, (loud.get(`${level}: ${entry.msg}`) ?? 0) + 1)
  } catch {
    levels.set('not JSON', (levels.get('not JSON') ?? 0) + 1)
  }
}
say('')
say(`Gateway log lines by level: ${[...levels].map(([l, n]) => `${l} ${n}`).join(', ') || 'none'}${loud.size > 0 ? `; warnings and errors: ${[...loud].map(([m, n]) => `${n} × \`${m.slice(0, 200)}\``).join('; ')}` : ''}`)

await mkdir(dirname(OUT), { recursive: true })
await writeFile(OUT, `${lines.join('\n')}\n`)
process.stdout.write(`\nwritten to ${OUT}\n`)

await gateway.stop()
await upstream.stop()
await issuer.close()
await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
await db.end()
await rm(dir, { recursive: true, force: true })
