// The cluster the fault suite runs against: three real `bouncer serve` processes behind HAProxy
// (health checks on each instance's /readyz), sharing a private Redis (limits) and a private
// PostgreSQL (audit), with a real OpenID provider and three upstream targets, all on 127.0.0.1.
// Everything here is started for the suite and may be stopped and restarted by it: the machine's
// own Redis and PostgreSQL (6379, 5432) are never touched, other test files use them.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { request } from 'undici'
import { stringify } from 'yaml'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { closedPort } from '../helpers/faults.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startPostgres, type PrivatePostgres } from '../helpers/postgres.ts'
import { startRedis, type TestRedis } from '../helpers/redis.ts'
import { startTarget, type TestTarget } from '../helpers/targets.ts'
import { waitFor } from '../helpers/wait.ts'

export const ADMIN_TOKEN = 'cluster-admin-token-0123456789'
export const AUDIT_SCHEMA = 'bouncer'

/** What a scenario may change in the one config every instance reads. */
export interface ClusterSettings {
  onError: 'allow' | 'deny'
  /** Sent to the upstream as X-Generation: a visible trace of a config reload. */
  generation: number
}

export interface Instance {
  readonly name: string
  readonly port: number
  readonly adminPort: number
  readonly url: string
  readonly adminUrl: string
  process: ServeProcess | null
  start(): Promise<void>
  /** SIGKILL: no drain, nothing flushed. */
  kill(): Promise<void>
  /** SIGTERM: drain, flush the audit log, exit; answers the exit code. */
  drain(): Promise<number | null>
  readyz(): Promise<{ status: number; checks: Record<string, string> }>
  metric(series: string): Promise<number | undefined>
  /** The sum of every series of a metric, whatever its labels. */
  metricSum(name: string): Promise<number>
}

export interface Cluster {
  dir: string
  configFile: string
  url: string
  statsUrl: string
  redis: TestRedis
  postgres: PrivatePostgres
  idp: TestIdentityProvider
  targets: TestTarget[]
  instances: Instance[]
  settings: ClusterSettings
  /** Rewrites the config file; with server.watch_config every instance reloads it within ~1 s. */
  writeConfig(change: Partial<ClusterSettings>): void
  /** HAProxy's view: each server's status and how many requests it sent there. */
  balancerView(): Promise<Array<{ server: string; status: string; sessions: number }>>
  /** Waits until HAProxy has every instance UP again. */
  allUp(timeoutMs?: number): Promise<void>
  query<T extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<T[]>
  stop(): Promise<void>
}

function configOf(c: { dir: string; idp: TestIdentityProvider; redis: TestRedis; postgres: PrivatePostgres; targets: TestTarget[] }, settings: ClusterSettings): Record<string, unknown> {
  return {
    server: {
      listen: '127.0.0.1:8080', // each instance gets its own --port
      trusted_proxies: ['127.0.0.1/32'],
      watch_config: true,
      shutdown_timeout: '10s',
    },
    admin: { listen: '127.0.0.1:9090', token: ADMIN_TOKEN },
    // A rotated key is fetched at most 2 s after a failed fetch (the default cool-down is 30 s).
    issuers: [{ name: 'corp', issuer: c.idp.issuer, audiences: [AUDIENCE], jwks_cooldown: '2s' }],
    roles: [{ name: 'any-caller', assumed_by: [{ issuer: 'corp' }, { issuer: 'api-keys', subject: 'bi-*' }], policies: ['allow-all'] }],
    // API keys in PostgreSQL: made with `bouncer keys`, revoked through any instance's admin API,
    // refused by every instance within `cache`.
    api_keys: { store: { type: 'postgres', url: c.postgres.url, schema: 'bouncer_keys' }, cache: '1s' },
    policies: [{ name: 'allow-all', statements: [{ sid: 'AllowAll', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    limits: [
      // Every request of the steady load takes a token from Redis: the store is on the path.
      { name: 'bulk', key: 'header:X-Tenant', rate: '100000/s', burst: 100000 },
      // Aggregate accuracy: one tenant's rate, held across three instances.
      { name: 'metered', key: 'header:X-Tenant', rate: '10/s', burst: 10 },
      // Exactness after a Redis outage: a fresh tenant gets exactly 5, then nothing for a minute.
      { name: 'probe', key: 'header:X-Tenant', rate: '1/m', burst: 5 },
    ],
    limits_store: { type: 'redis', url: c.redis.url, on_error: settings.onError, prefix: 'cluster:', timeout: '250ms' },
    upstreams: [{
      name: 'api',
      targets: c.targets.map((t) => t.url),
      balance: 'round_robin',
      // Generous for a loaded machine: a check that times out there must mean the target hangs.
      health_check: { path: '/healthz', interval: '1s', timeout: '1s', unhealthy_after: 3, healthy_after: 2 },
      eject: { after: 3, for: '5s' },
      retries: { attempts: 3, on: ['connect_failure', 'reset', 'timeout'], budget: '20%' },
      timeout: '2s',
      connect_timeout: '1s',
      headers: { 'X-Generation': String(settings.generation) },
    }],
    routes: [
      { id: 'api', path: '/api/*', upstream: 'api', limits: ['bulk'] },
      { id: 'metered', path: '/metered/*', upstream: 'api', limits: ['metered'] },
      { id: 'probe', path: '/probe/*', upstream: 'api', limits: ['probe'] },
      { id: 'keyed', path: '/keyed/*', upstream: 'api', accept: ['api_key'] },
    ],
    audit: {
      sinks: [{ type: 'postgres', url: c.postgres.url, schema: AUDIT_SCHEMA }],
      durability: 'sync',
      // One file for every instance: what differs per instance comes from its environment.
      spill_dir: join(c.dir, 'state', '${env:BOUNCER_INSTANCE}', 'spill'),
      checkpoint_interval: '5s',
    },
    telemetry: { log_level: 'info' },
  }
}

function haproxyConfig(port: number, statsPort: number, instances: Instance[]): string {
  return `global
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  # Checks on a machine shared with other work: slow is not down (2 s to answer, 3 misses in a row).
  timeout check 2s
  timeout http-keep-alive 5s
  option http-keep-alive
  # A request that found an instance gone (refused, or closed with no answer: SIGKILL, a drain
  # that closed an idle connection) is tried again on another instance.
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response
frontend gateway
  bind 127.0.0.1:${port}
  default_backend bouncer
backend bouncer
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 250ms fall 3 rise 2
${instances.map((i) => `  server ${i.name} 127.0.0.1:${i.port} check port ${i.adminPort}`).join('\n')}
listen stats
  bind 127.0.0.1:${statsPort}
  stats enable
  stats uri /stats
`
}

function createInstance(name: string, port: number, adminPort: number, configFile: string): Instance {
  const instance: Instance = {
    name,
    port,
    adminPort,
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    process: null,
    async start() {
      instance.process = await startServe(['--config', configFile, '--port', String(port), '--admin-port', String(adminPort)], {
        env: { BOUNCER_INSTANCE: name, NODE_OPTIONS: '--max-semi-space-size=16' },
      })
      await waitFor(async () => (await instance.readyz()).status === 200, `${name} ready`, 60_000)
    },
    async kill() {
      const child = instance.process?.child
      if (!child || child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await instance.process?.exited
      instance.process = null
    },
    async drain() {
      const code = (await instance.process?.stop('SIGTERM')) ?? null
      instance.process = null
      return code
    },
    async readyz() {
      try {
        const res = await request(`${instance.adminUrl}/readyz`)
        const body = (await res.body.json()) as { checks: Record<string, string> }
        return { status: res.statusCode, checks: body.checks }
      } catch {
        return { status: 0, checks: {} }
      }
    },
    async metric(series) {
      const res = await request(`${instance.adminUrl}/metrics`)
      const body = await res.body.text()
      const line = body.split('\n').find((l) => l.startsWith(`${series} `))
      return line === undefined ? undefined : Number(line.slice(series.length + 1))
    },
    async metricSum(name) {
      const res = await request(`${instance.adminUrl}/metrics`)
      let sum = 0
      for (const line of (await res.body.text()).split('\n')) {
        if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
      }
      return sum
    },
  }
  return instance
}

export interface ClusterOptions {
  /**
   * The hook for what lands next (server workers, browser sessions in Redis, approvals): each
   * adds its section to the one config every instance reads, and its scenario to the suite.
   */
  extendConfig?: (config: Record<string, unknown>) => Record<string, unknown>
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'bouncer-cluster-'))
  const configFile = join(dir, 'bouncer.yaml')
  const [redis, postgres, idp, targets] = await Promise.all([
    startRedis(),
    startPostgres(),
    startIdentityProvider(),
    Promise.all(['t1', 't2', 't3'].map((name) => startTarget(name))),
  ])
  const parts = { dir, idp, redis, postgres, targets }
  const settings: ClusterSettings = { onError: 'allow', generation: 1 }
  const extend = options.extendConfig ?? ((config) => config)
  const write = () => writeFileSync(configFile, stringify(extend(configOf(parts, settings))))
  write()

  const instances: Instance[] = []
  for (const name of ['gw-1', 'gw-2', 'gw-3']) instances.push(createInstance(name, await closedPort(), await closedPort(), configFile))
  // One at a time: the first creates the audit tables, the others find them.
  for (const instance of instances) await instance.start()

  const port = await closedPort()
  const statsPort = await closedPort()
  const haproxyFile = join(dir, 'haproxy.cfg')
  writeFileSync(haproxyFile, haproxyConfig(port, statsPort, instances))
  const haproxy: ChildProcess = spawn('haproxy', ['-db', '-f', haproxyFile], { stdio: ['ignore', 'ignore', 'pipe'] })
  let haproxyErr = ''
  haproxy.stderr?.on('data', (d: Buffer) => (haproxyErr += d.toString()))
  const pool = new pg.Pool({ connectionString: postgres.url, max: 2 })
  pool.on('error', () => {}) // the suite stops PostgreSQL: idle clients see it go

  const cluster: Cluster = {
    dir,
    configFile,
    url: `http://127.0.0.1:${port}`,
    statsUrl: `http://127.0.0.1:${statsPort}/stats`,
    redis,
    postgres,
    idp,
    targets,
    instances,
    settings,
    writeConfig(change) {
      Object.assign(settings, change)
      write()
    },
    async balancerView() {
      const res = await request(`${cluster.statsUrl};csv`)
      const [header, ...rows] = (await res.body.text()).trim().split('\n')
      const columns = (header ?? '').replace(/^# /, '').split(',')
      const at = (row: string[], column: string) => row[columns.indexOf(column)] ?? ''
      return rows
        .map((line) => line.split(','))
        .filter((row) => at(row, 'pxname') === 'bouncer' && at(row, 'svname').startsWith('gw-'))
        .map((row) => ({ server: at(row, 'svname'), status: at(row, 'status'), sessions: Number(at(row, 'stot')) }))
    },
    async allUp(timeoutMs = 60_000) {
      await waitFor(async () => {
        try {
          const view = await cluster.balancerView()
          return view.length === instances.length && view.every((s) => s.status === 'UP')
        } catch {
          return false
        }
      }, `HAProxy to see every instance UP${haproxyErr ? ` (haproxy: ${haproxyErr})` : ''}`, timeoutMs)
    },
    async query(sql, params = []) {
      return (await pool.query(sql, params)).rows
    },
    async stop() {
      haproxy.kill('SIGTERM')
      await Promise.all(instances.map((i) => i.drain().catch(() => null)))
      await pool.end().catch(() => {})
      await Promise.all(targets.map((t) => t.close()))
      await idp.stop()
      await redis.stop()
      await postgres.destroy()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  if (haproxy.exitCode === null) await Promise.race([cluster.allUp(), once(haproxy, 'exit').then(() => Promise.reject(new Error(`haproxy exited: ${haproxyErr}`)))])
  return cluster
}

/** Each instance's config generation now (it counts that process's loads: a restarted one starts again at 1). */
export async function generations(cluster: Cluster): Promise<number[]> {
  const answers = await Promise.all(cluster.instances.map((i) => i.readyz()))
  return answers.map((r) => Number(/generation (\d+)/.exec(r.checks.config ?? '')?.[1] ?? 0))
}

/** Waits until every instance has loaded the config once more than `before` (a reload rolled out). */
export async function waitForReload(cluster: Cluster, before: number[], timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => (await generations(cluster)).every((g, i) => g > (before[i] as number)), 'every instance to reload the changed config', timeoutMs)
}

/** The config file as the instances read it (for the report). */
export function configText(cluster: Cluster): string {
  return readFileSync(cluster.configFile, 'utf8')
}
