// Benchmark cases. Each starts what it needs on loopback and names the process whose CPU is the
// cost being measured (the proxy, or the upstream when there is no proxy).
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { newApiKey } from '../src/identity/api-keys/key.ts'
import { openSqliteKeyStore } from '../src/identity/api-keys/sqlite-store.ts'
import { sessionId } from '../src/identity/sessions/sign-in.ts'
import { openSqliteSessionStore } from '../src/identity/sessions/sqlite-store.ts'
import { openEmbeddedStore } from '../src/secrets/embedded.ts'
import { BENCH_AUDIENCE, type BenchIssuer } from './lib/issuer.ts'
import { nginxAvailability, startNginx } from './lib/nginx.ts'
import { PIPELINE_TRACEPARENT, pipelineConfig } from './lib/pipeline-config.ts'
import { LOAD_CORE, pinThreads, startProcess, type Started } from './lib/processes.ts'
import { OPT_IN_WORKER_CASES, WORKER_CASES } from './workers.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** What deploy/bouncer.service and the Dockerfile set (a test keeps the three the same). */
export const DEPLOYED_NODE_OPTIONS = '--max-semi-space-size=16'
const NODE = process.execPath
/** The V8 flags bin/bouncer.js sets on itself (setFlagsFromString), for a reference that should run as the gateway does (a test keeps the two the same). */
export const GATEWAY_V8_FLAGS = ['--no-allocation-site-pretenuring', '--heap-growing-percent=50']

let compiledBuild = false

/**
 * Builds dist/ (npm run build) and runs every gateway from it, as deployed; run.ts does this
 * unless --sources (quick mode runs the sources: the test suite calls it).
 */
export function useCompiledBuild(): void {
  const built = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' })
  if (built.status !== 0) throw new Error('npm run build failed: the benchmark runs the compiled build (or pass --sources)')
  compiledBuild = true
}

export interface CaseContext {
  upstreamPort: number
  issuer: BenchIssuer
  /** A scratch directory for token files. */
  dir: string
  quick: boolean
}

/** A case that cannot run here (nginx missing): reported as skipped, with the reason. */
export class CaseSkipped extends Error {}

export interface RunningCase {
  /** Where the load goes. */
  url: string
  headers?: Record<string, string>
  tokensFile?: string
  /** The process whose CPU per request is reported. */
  measured: Started
  /** Connections for this case when it cannot take --connections (a function's pool refuses beyond its concurrency). */
  connections?: number
  /** The SQLite audit log of an audited case: its records are counted once the gateway has stopped (issue 15). */
  auditDb?: string
  stop(): Promise<void>
}

export interface BenchCase {
  id: string
  title: string
  /** `main`: 1 KB responses; `stream`: 1 MB responses, reported in MB/s. */
  group: 'main' | 'stream'
  start(ctx: CaseContext): Promise<RunningCase>
}

export async function startUpstream(): Promise<Started & { port: number }> {
  const started = await startProcess(NODE, [join(ROOT, 'bench/servers/upstream.ts')], /listening (\d+)/)
  return Object.assign(started, { port: Number(started.match[1]) })
}

/**
 * What a run adds to a measured Node process (the gateway, the minimal proxy): `--profile`'s CPU
 * profile, written when it exits (bench/run.ts reads it), for NODE_OPTIONS; and BENCH_NODE_FLAGS,
 * Node or V8 flags to try (a variant's `CASE@--flag`), given on the command line because
 * NODE_OPTIONS refuses some V8 flags.
 */
function variantNodeOptions(): { profile: string; flags: string[] } {
  const dir = process.env.BENCH_CPU_PROF_DIR
  return { profile: dir ? ` --cpu-prof --cpu-prof-dir=${dir}` : '', flags: process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [] }
}

/** Writes a config into a temp dir and runs `bouncer serve` on it. */
export async function startBouncer(config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, options: { core?: string | null; startTimeoutMs?: number } = {}): Promise<Started & { url: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-bench-'))
  const file = join(dir, 'bouncer.yaml')
  const full = { server: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' }, ...config }
  // BENCH_CONFIG_SET="audit.flush_interval=25ms;server.x=1": settings to try on every gateway of
  // the run (a variant's `CASE~path=value`: bench/variants.ts).
  for (const assignment of (process.env.BENCH_CONFIG_SET ?? '').split(';').filter(Boolean)) setPath(full, assignment)
  await writeFile(file, stringify(full))
  // The deployment setting (deploy/bouncer.service, Dockerfile): a 16 MB young generation instead
  // of V8's default growth to 32 MB semi-spaces: ~90 MB less resident memory, the same throughput.
  const { profile, flags } = variantNodeOptions()
  // Issue 15: what a deployment runs is the compiled build (the image ships dist/): bin/bouncer.js
  // takes it when type stripping is off. The sources cost ~30-60 MB more resident memory (Node's
  // TypeScript stripper and the source maps), the same CPU once warm.
  const runtime = compiledBuild ? ['--no-experimental-strip-types'] : []
  // BENCH_GATEWAY_ROOT: another checkout's gateway (its dist/ built), a variant's `CASE^DIR` (bench/variants.ts).
  const bin = join(process.env.BENCH_GATEWAY_ROOT || ROOT, 'bin/bouncer.js')
  const started = await startProcess(NODE, [...runtime, ...flags, bin, 'serve', '--config', file], /gateway listening on (\S+)/, {
    env: { BOUNCER_LOG_LEVEL: 'warn', NODE_OPTIONS: `${DEPLOYED_NODE_OPTIONS}${profile}`, ...env },
    core: options.core,
    startTimeoutMs: options.startTimeoutMs,
    measured: true,
  })
  const stop = started.stop
  return Object.assign(started, {
    url: started.match[1] as string,
    dir,
    async stop() {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  })
}

/** `a.b.c=value` into a config object: a number when it reads as one; a section it names but the config lacks is created. */
function setPath(config: Record<string, unknown>, assignment: string): void {
  const [path = '', value = ''] = assignment.split('=', 2)
  const keys = path.split('.')
  let at = config
  for (const key of keys.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>
  at[keys.at(-1) as string] = value !== '' && Number.isFinite(Number(value)) ? Number(value) : value
}

export const upstreamAlone: BenchCase = {
  id: 'upstream',
  group: 'main',
  title: '(a) upstream alone',
  async start(ctx) {
    const upstream = await startUpstream()
    void ctx
    return { url: `http://127.0.0.1:${upstream.port}/`, measured: upstream, stop: () => upstream.stop() }
  },
}

export const bouncerBare: BenchCase = {
  id: 'bouncer-bare',
  group: 'main',
  title: '(c) Bouncer, bare proxy',
  async start(ctx) {
    const gateway = await startBouncer({
      audit: { sinks: [] },
      upstreams: [{ name: 'api', url: `http://127.0.0.1:${ctx.upstreamPort}`, max_connections: 64 }],
      routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
    })
    return { url: `${gateway.url}/`, measured: gateway, stop: () => gateway.stop() }
  },
}

function auditCase(spread: boolean): BenchCase {
  return {
    id: spread ? 'bouncer-audit-spread' : 'bouncer-audit',
    group: 'main',
    title: spread ? '(c) + SQLite audit, audit worker thread on the other core' : '(c) + SQLite audit, all on one core',
    async start(ctx) {
      const auditDb = join(ctx.dir, `bench-audit-${spread}.db`)
      const gateway = await startBouncer({
        audit: { sinks: [{ type: 'sqlite', path: auditDb }], spill_dir: join(ctx.dir, `bench-spill-${spread}`) },
        upstreams: [{ name: 'api', url: `http://127.0.0.1:${ctx.upstreamPort}`, max_connections: 64 }],
        routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
      })
      // The request thread stays on its core; the audit worker (Node names it WorkerThread) goes
      // where a multi-core host would run it: a core the request thread does not use.
      if (spread && LOAD_CORE !== null) await waitForThread(gateway.child.pid as number, 'WorkerThread', LOAD_CORE)
      return { url: `${gateway.url}/`, measured: gateway, auditDb, stop: () => gateway.stop() }
    },
  }
}

async function waitForThread(pid: number, name: string, core: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (pinThreads(pid, name, core) > 0) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`no ${name} thread in process ${pid}`)
}

export const minimalProxy: BenchCase = {
  id: 'minimal',
  group: 'main',
  title: 'reference: minimal node:http + undici proxy',
  async start(ctx) {
    // The floor gets the gateway's heap settings: without them its young generation grew to 64 MB
    // and it held 234 MB under load (run 10), a floor no deployment of the gateway has (issue 15).
    // Its profile (--profile minimal) and a variant's flags (`minimal@--perf-basic-prof`) as the gateway's.
    const { profile, flags } = variantNodeOptions()
    const proxy = await startProcess(NODE, [...GATEWAY_V8_FLAGS, ...flags, join(ROOT, 'bench/servers/minimal-proxy.ts'), String(ctx.upstreamPort), 'dispatch'], /listening on (\S+)/, { env: { NODE_OPTIONS: `${DEPLOYED_NODE_OPTIONS}${profile}` }, measured: true })
    return { url: `${proxy.match[1]}/`, measured: proxy, stop: () => proxy.stop() }
  },
}

function authenticatedGateway(ctx: CaseContext, algorithm: 'ES256' | 'RS256', extra: { config?: Record<string, unknown>; upstream?: Record<string, unknown>; env?: NodeJS.ProcessEnv; accept?: string[] } = {}): Promise<Started & { url: string }> {
  return startBouncer({
    ...extra.config,
    audit: { sinks: [] },
    issuers: [{ name: 'bench', issuer: ctx.issuer.issuer, audiences: [BENCH_AUDIENCE], algorithms: [algorithm] }],
    roles: [{ name: 'service', assumed_by: [{ issuer: 'bench', subject: 'svc-*' }, ...(extra.accept?.includes('api_key') ? [{ issuer: 'api-keys', subject: 'svc-*' }] : [])], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'ReadAll', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: `http://127.0.0.1:${ctx.upstreamPort}`, max_connections: 64, ...extra.upstream }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', ...(extra.accept ? { accept: extra.accept } : {}) }],
  }, extra.env)
}

export const bouncerJwtCached: BenchCase = {
  id: 'bouncer-jwt-cached',
  group: 'main',
  title: 'Bouncer, ES256 token, verified once then cached',
  async start(ctx) {
    const gateway = await authenticatedGateway(ctx, 'ES256')
    const [token] = await ctx.issuer.mint(1, 'ES256')
    return { url: `${gateway.url}/`, headers: { authorization: `Bearer ${token}` }, measured: gateway, stop: () => gateway.stop() }
  },
}

/**
 * The cached-token case with an API key instead (issue 17): the same roles and policy, the key's
 * record read once from the SQLite store and then every api_keys.cache (500 ms), the secret hashed
 * and compared on every request, its use noted for the batched last-used write.
 */
export const bouncerApiKey: BenchCase = {
  id: 'bouncer-api-key',
  group: 'main',
  title: 'Bouncer, API key in X-API-Key (record cached, hash checked per request)',
  async start(ctx) {
    const path = join(ctx.dir, 'bench-api-keys.db')
    const store = openSqliteKeyStore(path)
    const created = newApiKey()
    await store.insert({ id: created.id, principal: 'svc-bench', description: 'bench', hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null })
    await store.close()
    const gateway = await authenticatedGateway(ctx, 'ES256', { config: { api_keys: { store: { type: 'sqlite', path } } }, accept: ['api_key'] })
    return { url: `${gateway.url}/`, headers: { 'x-api-key': created.key }, measured: gateway, stop: () => gateway.stop() }
  },
}

/**
 * The cached-token case with a browser's session cookie instead (issue 17): the same roles and
 * policy; the session (signed in beforehand, as the callback would have written it) in the SQLite
 * store, its record kept in memory while PRAGMA data_version (checked once per event-loop turn)
 * says no other process wrote the file, so a revocation anywhere is seen at the next request.
 */
export const bouncerSession: BenchCase = {
  id: 'bouncer-session',
  group: 'main',
  title: 'Bouncer, session cookie (SQLite session store, version-checked per loop turn)',
  async start(ctx) {
    const path = join(ctx.dir, 'bench-sessions.db')
    const store = openSqliteSessionStore(path, 3_600_000)
    const cookie = randomBytes(32).toString('base64url')
    const now = Date.now()
    await store.put({
      id: sessionId(cookie), issuer: 'bench', subject: 'svc-bench', claims: { sub: 'svc-bench', email: 'svc@example.com', groups: ['bench'] },
      createdAt: now, lastSeenAt: now, expiresAt: now + 8 * 3_600_000, refreshAt: null, sealed: null, audience: 'gateway',
    })
    await store.close()
    const gateway = await authenticatedGateway(ctx, 'ES256', {
      config: { sign_in: { issuer: 'bench', client_id: 'bench-web', session: { ttl: '8h', idle: '1h', store: { type: 'sqlite', path } } } },
      accept: ['session'],
    })
    return { url: `${gateway.url}/`, headers: { cookie: `bouncer_session=${cookie}` }, measured: gateway, stop: () => gateway.stop() }
  },
}

/** The cached-token case plus an upstream credential from the embedded store and X-Bouncer-Assertion. */
export const bouncerCredentialAssertion: BenchCase = {
  id: 'bouncer-credential-assertion',
  group: 'main',
  title: 'Bouncer, cached ES256 token + injected credential + X-Bouncer-Assertion',
  async start(ctx) {
    const masterKey = randomBytes(32)
    const path = join(ctx.dir, 'bench-secrets.db')
    const store = openEmbeddedStore(path, masterKey)
    store.put('api-token', randomBytes(32).toString('base64url'))
    store.close()
    const gateway = await authenticatedGateway(ctx, 'ES256', {
      config: { secrets: { store: { type: 'embedded', path, master_key: 'env:BOUNCER_MASTER_KEY' } } },
      upstream: { headers: { Authorization: 'Bearer ${secret:api-token}' }, identity_assertion: true },
      env: { BOUNCER_MASTER_KEY: masterKey.toString('base64') },
    })
    const [token] = await ctx.issuer.mint(1, 'ES256')
    return { url: `${gateway.url}/`, headers: { authorization: `Bearer ${token}` }, measured: gateway, stop: () => gateway.stop() }
  },
}

function coldCase(algorithm: 'ES256' | 'RS256'): BenchCase {
  return {
    id: `bouncer-jwt-cold-${algorithm.toLowerCase()}`,
    group: 'main',
    title: `Bouncer, a new ${algorithm} token on every request`,
    async start(ctx) {
      const gateway = await authenticatedGateway(ctx, algorithm)
      // More distinct tokens than one run sends: every request is a cache miss.
      const tokens = await ctx.issuer.mint(ctx.quick ? 2_000 : 60_000, algorithm)
      const tokensFile = join(ctx.dir, `tokens-${algorithm}.txt`)
      await ctx.issuer.writeTokens(tokensFile, tokens)
      return { url: `${gateway.url}/`, tokensFile, measured: gateway, stop: () => gateway.stop() }
    },
  }
}

export const nginxProxy: BenchCase = {
  id: 'nginx',
  title: '(b) nginx, keep-alive reverse proxy',
  group: 'main',
  async start(ctx) {
    const nginx = nginxAvailability()
    if ('skipped' in nginx) throw new CaseSkipped(nginx.skipped)
    const proxy = await startNginx(nginx.path, ctx.dir, ctx.upstreamPort)
    return { url: `${proxy.url}/`, measured: proxy, stop: () => proxy.stop() }
  },
}

export const fastifyProxy: BenchCase = {
  id: 'fastify',
  title: '(e) fastify 5 + @fastify/reply-from',
  group: 'main',
  async start(ctx) {
    const proxy = await startProcess(NODE, [join(ROOT, 'bench/servers/fastify-proxy.ts'), String(ctx.upstreamPort)], /listening on (\S+)/)
    return { url: `${proxy.match[1]}/`, measured: proxy, stop: () => proxy.stop() }
  },
}

/**
 * Functions: one echo handler invoked through the gateway (a public route, a pool of worker threads)
 * and the same handler behind a plain node:http server. Both get as many connections as the pool
 * has workers: beyond that the gateway would refuse with 503, as it is meant to.
 */
const FUNCTION_CONCURRENCY = 8

export const functionEcho: BenchCase = {
  id: 'function-echo',
  group: 'main',
  title: 'function: echo handler through Bouncer (worker pool)',
  async start() {
    const gateway = await startBouncer({
      audit: { sinks: [] },
      functions: [{ name: 'echo', module: join(ROOT, 'bench/functions/echo.mjs'), concurrency: FUNCTION_CONCURRENCY }],
      routes: [{ id: 'echo', path: '/*', function: 'echo', public: true }],
    })
    // One invocation per worker before the load: a worker still loading its module (type
    // stripping takes ~0.2 s of CPU each) would make the first requests outlast wrk's timeout.
    await Promise.all(Array.from({ length: FUNCTION_CONCURRENCY }, async () => (await fetch(`${gateway.url}/`)).text()))
    return { url: `${gateway.url}/`, measured: gateway, connections: FUNCTION_CONCURRENCY, stop: () => gateway.stop() }
  },
}

export const functionPlain: BenchCase = {
  id: 'function-plain',
  group: 'main',
  title: 'function: the same handler behind plain node:http',
  async start() {
    const server = await startProcess(NODE, [join(ROOT, 'bench/servers/function-plain.ts')], /listening on (\S+)/)
    return { url: `${server.match[1]}/`, measured: server, connections: FUNCTION_CONCURRENCY, stop: () => server.stop() }
  },
}

export const functionThread: BenchCase = {
  id: 'function-thread',
  group: 'main',
  title: 'reference: the same handler in 8 worker threads behind plain node:http (the thread hop alone)',
  async start() {
    const server = await startProcess(NODE, [join(ROOT, 'bench/servers/function-thread.ts'), String(FUNCTION_CONCURRENCY)], /listening on (\S+)/)
    return { url: `${server.match[1]}/`, measured: server, connections: FUNCTION_CONCURRENCY, stop: () => server.stop() }
  },
}

/** (d): the whole pipeline, sized by `shape` (the sweeps vary it). */
export async function startPipeline(ctx: CaseContext, shape: { routes: number; statements: number }, spreadAudit = false): Promise<Started & { url: string; auditDb: string }> {
  const dir = await mkdtemp(join(ctx.dir, 'pipeline-'))
  const { config, path } = pipelineConfig({ ...shape, issuer: ctx.issuer.issuer, upstreamPort: ctx.upstreamPort, dir })
  const gateway = await startBouncer(config)
  if (spreadAudit && LOAD_CORE !== null) await waitForThread(gateway.child.pid as number, 'WorkerThread', LOAD_CORE)
  return Object.assign(gateway, { url: `${gateway.url}${path}`, auditDb: join(dir, 'audit.db') })
}

function pipelineCase(spread: boolean): BenchCase {
  return {
    id: spread ? 'bouncer-full-spread' : 'bouncer-full',
    title: spread
      ? '(d) + the audit worker thread on the other core (as on any multi-core host)'
      : '(d) Bouncer, full pipeline: ES256 token, 3 roles, 200 statements, 1,000 routes, rate limit, SQLite audit, traceparent',
    group: 'main',
    async start(ctx) {
      const gateway = await startPipeline(ctx, { routes: 1_000, statements: 200 }, spread)
      const [token] = await ctx.issuer.mint(1, 'ES256')
      return { url: gateway.url, headers: { authorization: `Bearer ${token}`, traceparent: PIPELINE_TRACEPARENT }, measured: gateway, auditDb: gateway.auditDb, stop: () => gateway.stop() }
    },
  }
}

/** The same case answering 1 MB bodies: streaming throughput. */
function streaming(base: BenchCase, title: string): BenchCase {
  return {
    id: `${base.id}-1mb`,
    title,
    group: 'stream',
    async start(ctx) {
      const running = await base.start(ctx)
      return { ...running, url: `${running.url}1mb` }
    },
  }
}

export const CASES: BenchCase[] = [
  upstreamAlone, nginxProxy, minimalProxy, fastifyProxy, bouncerBare, pipelineCase(false), pipelineCase(true),
  auditCase(false), auditCase(true), bouncerJwtCached, bouncerApiKey, bouncerSession, bouncerCredentialAssertion, coldCase('ES256'), coldCase('RS256'),
  streaming(upstreamAlone, '(a) upstream alone, 1 MB'), streaming(nginxProxy, '(b) nginx, 1 MB'),
  streaming(fastifyProxy, '(e) fastify + reply-from, 1 MB'), streaming(bouncerBare, '(c) Bouncer, bare proxy, 1 MB'),
  functionPlain, functionThread, functionEcho, ...WORKER_CASES,
]

/** Cases that run only when `--cases` names them. */
export const OPT_IN_CASES: BenchCase[] = [...OPT_IN_WORKER_CASES]
