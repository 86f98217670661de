// The front door (issue 16): what TLS and HTTP/2 cost, side by side with nginx terminating TLS
// for the same upstream with the same certificate (ECDSA P-256, made with openssl).
//
// - requests: nginx and Bouncer (bare proxy) over HTTP and over HTTPS (HTTP/1.1, keep-alive, wrk),
//   and the full pipeline over HTTPS as HTTP/1.1 (wrk) and as h2 (bench/lib/h2-load.ts);
// - the cost of TLS per request: HTTPS minus HTTP, in the proxy's CPU µs, for each; the target is
//   Bouncer's at most 1.5 × nginx's;
// - handshakes: `openssl s_time` making new connections (each a handshake and one HTTP/1.0
//   request), full and resumed (TLS 1.3 tickets), with the server's CPU per connection.
//
// node bench/front-door.ts [--quick]   runs this table alone; npm run bench runs it too.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createPki, type TestPki } from '../test/helpers/certs.ts'
import { startBouncer, startUpstream } from './cases.ts'
import { startBenchIssuer, type BenchIssuer } from './lib/issuer.ts'
import { HAS_WRK, measureLoad, medianRun, type Measured } from './lib/load.ts'
import { nginxAvailability, startNginx } from './lib/nginx.ts'
import { PIPELINE_TRACEPARENT, pipelineConfig } from './lib/pipeline-config.ts'
import { cpuMicros, LOAD_CORE, pinned, type Started } from './lib/processes.ts'

const H2_LOAD = fileURLToPath(new URL('./lib/h2-load.ts', import.meta.url))

export interface FrontDoorOptions {
  quick: boolean
  durationSec: number
  repeats: number
  warmupSec: number
  connections: number
}

export interface RequestRow {
  id: string
  title: string
  result: Measured | null
  skipped?: string
}

export interface HandshakeRow {
  server: string
  kind: 'full' | 'resumed'
  perSec: number
  /** The server's CPU per connection: a handshake and one small request. */
  cpuMicros: number
  /** Share of connections s_time reports as resumed. */
  reusedShare: number
  skipped?: string
}

export interface FrontDoorResult {
  requests: RequestRow[]
  handshakes: HandshakeRow[]
  /** CPU µs per request that TLS adds (HTTPS minus HTTP), and Bouncer's over nginx's. */
  tlsCost: { nginx: number | null; bouncer: number | null; ratio: number | null }
}

/** TLS may cost Bouncer at most this many times what it costs nginx per request (issue 16). */
export const TLS_COST_TARGET = 1.5

export async function benchFrontDoor(options: FrontDoorOptions): Promise<FrontDoorResult> {
  const pki = createPki()
  const upstream = await startUpstream()
  const issuer = await startBenchIssuer()
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-bench-tls-'))
  const requests: RequestRow[] = []
  const handshakes: HandshakeRow[] = []
  const tls = { cert: pki.server.cert, key: pki.server.key }
  const wrkOnly = HAS_WRK ? null : 'needs wrk (autocannon does not take the test CA)'
  try {
    const nginx = nginxAvailability()
    const noNginx = 'skipped' in nginx ? nginx.skipped : null
    requests.push(await row('nginx-http', 'nginx, HTTP', noNginx, () => startNginx((nginx as { path: string }).path, dir, upstream.port), (s) => wrk(s, options)))
    requests.push(await row('nginx-https', 'nginx, HTTPS (HTTP/1.1, TLS 1.3)', noNginx ?? wrkOnly, () => startNginx((nginx as { path: string }).path, dir, upstream.port, tls), async (s) => {
      handshakes.push(...(await handshakeRows('nginx', s, options)))
      return wrk(s, options)
    }))
    const bare = { audit: { sinks: [] }, upstreams: [{ name: 'api', url: `http://127.0.0.1:${upstream.port}`, max_connections: 64 }], routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }] }
    requests.push(await row('bouncer-bare-http', 'Bouncer bare proxy, HTTP', null, () => startBouncer(bare), (s) => wrk(s, options)))
    requests.push(await row('bouncer-bare-https', 'Bouncer bare proxy, HTTPS (HTTP/1.1, TLS 1.3)', wrkOnly, () => startBouncer({ ...bare, server: { listen: '127.0.0.1:0', tls, http2: true } }), async (s) => {
      handshakes.push(...(await handshakeRows('Bouncer', s, options)))
      return wrk(s, options)
    }))
    requests.push(...(await pipelineRows(pki, upstream.port, issuer, dir, options, wrkOnly)))
  } finally {
    await upstream.stop()
    await issuer.close()
    await rm(dir, { recursive: true, force: true })
    pki.close()
  }
  const cpu = (id: string) => requests.find((r) => r.id === id)?.result?.cpuMicrosPerRequest ?? null
  const cost = (https: number | null, http: number | null) => (https === null || http === null ? null : https - http)
  const nginxCost = cost(cpu('nginx-https'), cpu('nginx-http'))
  const bouncerCost = cost(cpu('bouncer-bare-https'), cpu('bouncer-bare-http'))
  return { requests, handshakes, tlsCost: { nginx: nginxCost, bouncer: bouncerCost, ratio: nginxCost && bouncerCost !== null && nginxCost > 0 ? bouncerCost / nginxCost : null } }
}

type Server = Started & { url: string }

async function row(id: string, title: string, skipped: string | null, start: () => Promise<Server>, load: (server: Server) => Promise<Measured>): Promise<RequestRow> {
  if (skipped) return { id, title, result: null, skipped }
  process.stderr.write(`running ${title}…\n`)
  const server = await start()
  try {
    return { id, title, result: await load(server) }
  } finally {
    await server.stop()
  }
}

/** Warm-up, then the median of the repeats, with wrk over HTTP or HTTPS. */
async function wrk(server: Server, options: FrontDoorOptions, path = '/', headers?: Record<string, string>): Promise<Measured> {
  const pid = server.child.pid as number
  const load = { url: `${server.url}${path}`, headers, connections: options.connections }
  await measureLoad(pid, { ...load, durationSec: options.warmupSec })
  const runs: Measured[] = []
  for (let i = 0; i < options.repeats; i++) runs.push(await measureLoad(pid, { ...load, durationSec: options.durationSec }))
  return medianRun(runs)
}

/** The full pipeline (case (d)) over TLS with h2 on: HTTP/1.1 by wrk, h2 by the Node load generator. */
async function pipelineRows(pki: TestPki, upstreamPort: number, issuer: BenchIssuer, dir: string, options: FrontDoorOptions, wrkOnly: string | null): Promise<RequestRow[]> {
  process.stderr.write('running the full pipeline over HTTPS, HTTP/1.1 and h2…\n')
  const { config, path } = pipelineConfig({ routes: 1_000, statements: 200, issuer: issuer.issuer, upstreamPort, dir: await mkdtemp(join(dir, 'pipeline-')) })
  const gateway = await startBouncer({ ...config, server: { listen: '127.0.0.1:0', tls: { cert: pki.server.cert, key: pki.server.key }, http2: true } })
  const [token] = await issuer.mint(1, 'ES256')
  const headers = { authorization: `Bearer ${token}`, traceparent: PIPELINE_TRACEPARENT }
  try {
    const h1: RequestRow = wrkOnly
      ? { id: 'bouncer-full-https-h1', title: '(d) full pipeline, HTTPS HTTP/1.1', result: null, skipped: wrkOnly }
      : { id: 'bouncer-full-https-h1', title: '(d) full pipeline, HTTPS HTTP/1.1', result: await wrk(gateway, options, path, headers) }
    const h2 = { id: 'bouncer-full-https-h2', title: '(d) full pipeline, HTTPS h2', result: await h2Load(gateway, pki.ca.cert, `${gateway.url}${path}`, headers, options) }
    return [h1, h2]
  } finally {
    await gateway.stop()
  }
}

/** h2: 4 connections × 16 streams (64 in flight, as wrk's 50 connections), warm-up, then the median run. */
async function h2Load(server: Server, ca: string, url: string, headers: Record<string, string>, options: FrontDoorOptions): Promise<Measured> {
  const pid = server.child.pid as number
  const once = async (seconds: number): Promise<Measured> => {
    const before = cpuMicros(pid)
    const output = await run(process.execPath, [H2_LOAD, url, '4', '16', String(seconds), ca, JSON.stringify(headers)])
    const cpu = cpuMicros(pid) - before
    const parsed = JSON.parse(output.trim().split('\n').at(-1) as string) as Omit<Measured, 'tool' | 'cpuMicrosPerRequest'>
    return { ...parsed, tool: 'wrk', cpuMicrosPerRequest: parsed.requests > 0 ? cpu / parsed.requests : 0 }
  }
  await once(options.warmupSec)
  const runs: Measured[] = []
  for (let i = 0; i < options.repeats; i++) runs.push(await once(options.durationSec))
  return medianRun(runs)
}

/** `openssl s_time`: new connections for a while, full handshakes then resumed ones (TLS 1.3). */
async function handshakeRows(name: string, server: Server, options: FrontDoorOptions): Promise<HandshakeRow[]> {
  const { port } = new URL(server.url)
  const pid = server.child.pid as number
  const rows: HandshakeRow[] = []
  for (const kind of ['full', 'resumed'] as const) {
    const before = cpuMicros(pid)
    const began = performance.now()
    // -www sends one request and reads the answer, and with it TLS 1.3's session tickets.
    const output = await run('openssl', ['s_time', '-connect', `127.0.0.1:${port}`, '-www', '/', kind === 'full' ? '-new' : '-reuse', '-time', String(options.durationSec)])
    const seconds = (performance.now() - began) / 1000
    const cpu = cpuMicros(pid) - before
    const connections = Number(/(\d+) connections in [\d.]+s;/.exec(output)?.[1] ?? 0)
    const marks = (output.match(/^[*r]+$/gm) ?? []).join('')
    rows.push({
      server: name,
      kind,
      perSec: connections / seconds,
      cpuMicros: connections > 0 ? cpu / connections : 0,
      reusedShare: marks.length > 0 ? (marks.match(/r/g)?.length ?? 0) / marks.length : 0,
    })
  }
  return rows
}

function run(command: string, args: string[]): Promise<string> {
  const [cmd, argv] = pinned(LOAD_CORE, command, args)
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    child.once('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${command} failed (${code}):\n${output}`))))
  })
}

const fmt = (n: number | null | undefined, digits = 1) => (n === null || n === undefined ? '–' : n.toFixed(digits))

export function frontDoorTables(result: FrontDoorResult): string {
  const requests = [
    '| case | req/s | p50 ms | p99 ms | CPU µs/req | errors |',
    '|---|---:|---:|---:|---:|---:|',
    ...result.requests.map((r) => (r.result
      ? `| ${r.title} | ${Math.round(r.result.rps)} | ${fmt(r.result.p50ms, 2)} | ${fmt(r.result.p99ms, 2)} | ${fmt(r.result.cpuMicrosPerRequest)} | ${r.result.errors} |`
      : `| ${r.title} | skipped: ${r.skipped} | | | | |`)),
  ].join('\n')
  const handshakes = [
    '| server | handshakes | connections/s | CPU µs per connection | resumed |',
    '|---|---|---:|---:|---:|',
    ...result.handshakes.map((h) => (h.skipped
      ? `| ${h.server} | ${h.kind} | skipped: ${h.skipped} | | |`
      : `| ${h.server} | ${h.kind} | ${Math.round(h.perSec)} | ${fmt(h.cpuMicros, 0)} | ${Math.round(h.reusedShare * 100)}% |`)),
  ].join('\n')
  const { nginx, bouncer, ratio } = result.tlsCost
  const verdict = ratio === null ? 'not measured' : ratio <= TLS_COST_TARGET ? 'met' : '**missed**'
  const cost = [
    '| target | nginx | Bouncer | Bouncer / nginx | |',
    '|---|---:|---:|---:|---|',
    `| TLS per request (HTTPS − HTTP, CPU µs) ≤ ${TLS_COST_TARGET} × nginx's | ${fmt(nginx)} | ${fmt(bouncer)} | ${fmt(ratio, 2)} | ${verdict} |`,
  ].join('\n')
  return `Requests (1 KB responses; same upstream, same certificate):\n\n${requests}\n\nTLS handshakes (openssl s_time: a new connection, its handshake and one HTTP/1.0 request):\n\n${handshakes}\n\n${cost}`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const quick = process.argv.includes('--quick')
  benchFrontDoor({ quick, durationSec: quick ? 1 : 5, repeats: quick ? 1 : 3, warmupSec: quick ? 1 : 3, connections: 50 })
    .then((result) => console.log(frontDoorTables(result)))
    .catch((err: unknown) => {
      console.error(err)
      process.exit(1)
    })
}
