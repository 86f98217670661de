// Forward-auth behind the real proxies: nginx (auth_request) and Caddy (forward_auth) from
// Debian's packages, each run as a child process with the snippet from docs/forward-auth.md as it
// is written there (only the ports change), in front of a real API on loopback, asking a real
// gateway. What the client gets, what the API receives, and what the audit log says.
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt } from 'jose'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProcess, type Started } from '../../bench/lib/processes.ts'
import { closedPort } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const NGINX = '/usr/sbin/nginx'
const CADDY = '/usr/bin/caddy'
const ADMIN = 'forward-auth-admin-token-0123456789'
const GUIDE = new URL('../../docs/forward-auth.md', import.meta.url)

/** The fenced block after `<!-- snippet: NAME -->` in the guide. */
async function snippet(name: string): Promise<string> {
  const guide = await readFile(GUIDE, 'utf8')
  const found = new RegExp(`<!-- snippet: ${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(guide)
  if (!found) throw new Error(`docs/forward-auth.md has no snippet "${name}"`)
  return found[1] as string
}

/** The guide's addresses (gateway 8080, API 9500, proxy 8000) replaced by this run's. */
function withPorts(text: string, ports: { gateway: number; api: number; proxy: number }): string {
  return text
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${ports.gateway}`)
    .replaceAll('127.0.0.1:9500', `127.0.0.1:${ports.api}`)
    .replaceAll(':8000', `:${ports.proxy}`)
}

let dir: string
let idp: TestIdentityProvider
let api: TestUpstream
let gw: TestGateway
let token: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-forward-auth-'))
  idp = await startIdentityProvider()
  api = await startUpstream()
  gw = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'reports', assumed_by: [{ issuer: 'corp' }], policies: ['read-orders'] }],
    policies: [{ name: 'read-orders', statements: [{ sid: 'ReadOrders', effect: 'allow', actions: ['GET'], routes: ['orders', 'limited'] }] }],
    limits: [{ name: 'one-a-minute', key: 'principal', rate: '1/m', burst: 1 }],
    upstreams: [{ name: 'orders-api', url: api.url, identity_assertion: true, headers: { 'X-Upstream-Key': 'orders-api-key-42' } }],
    routes: [
      { id: 'orders', methods: ['GET', 'POST'], path: '/orders/*', upstream: 'orders-api' },
      { id: 'admin', path: '/admin/*', upstream: 'orders-api' },
      { id: 'limited', path: '/limited', upstream: 'orders-api', limits: ['one-a-minute'] },
      { id: 'health', path: '/health', upstream: 'orders-api', public: true },
    ],
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'issuer keys')
  token = await idp.token('looker-reports')
}, 60_000)

afterAll(async () => {
  await gw?.close()
  await api?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

interface Proxy {
  url: string
  stop(): Promise<void>
}

async function waitUntilListening(url: string, started: Started): Promise<void> {
  await waitFor(async () => {
    try {
      const res = await request(`${url}/health`)
      await res.body.dump()
      return true
    } catch {
      return false
    }
  }, `the proxy at ${url}\n${started.output()}`, 20_000)
}

async function startNginx(): Promise<Proxy> {
  const prefix = join(dir, 'nginx')
  await mkdir(join(prefix, 'logs'), { recursive: true })
  const ports = { gateway: Number(new URL(gw.url).port), api: api.port, proxy: await closedPort() }
  const conf = join(prefix, 'nginx.conf')
  await writeFile(conf, `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
${withPorts(await snippet('nginx'), ports)}
}
`)
  const started = await startProcess(NGINX, ['-p', prefix, '-c', conf], null, { core: null })
  const url = `http://127.0.0.1:${ports.proxy}`
  await waitUntilListening(url, started)
  return { url, stop: () => started.stop() }
}

async function startCaddy(): Promise<Proxy> {
  const home = join(dir, 'caddy')
  await mkdir(home, { recursive: true })
  const ports = { gateway: Number(new URL(gw.url).port), api: api.port, proxy: await closedPort() }
  const file = join(home, 'Caddyfile')
  // Global options for a test run: no admin endpoint (its port is shared); HOME and XDG dirs are the run's.
  await writeFile(file, `{\n\tadmin off\n\tauto_https off\n}\n\n${withPorts(await snippet('caddy'), ports)}`)
  const env = { HOME: home, XDG_DATA_HOME: join(home, 'data'), XDG_CONFIG_HOME: join(home, 'config') }
  const started = await startProcess(CADDY, ['run', '--config', file, '--adapter', 'caddyfile'], null, { core: null, env })
  const url = `http://127.0.0.1:${ports.proxy}`
  await waitUntilListening(url, started)
  return { url, stop: () => started.stop() }
}

async function call(proxy: Proxy, path: string, headers: Record<string, string> = {}) {
  const before = api.received.length
  const res = await request(`${proxy.url}${path}`, { headers })
  const text = await res.body.text()
  let problem: { code?: string; detail?: string } = {}
  if (String(res.headers['content-type']).startsWith('application/problem+json')) problem = JSON.parse(text) as typeof problem
  return { status: res.statusCode, headers: res.headers, problem, reached: api.received.slice(before) as Received[] }
}

interface AuditRow {
  method: string
  path: string
  route: string | null
  status: number
  decision: string
  code: string | null
  subject: string | null
  upstream: string | null
  attempts: number | null
  statement: string | null
  limit: string | null
}

async function auditOf(path: string, count: number): Promise<AuditRow[]> {
  let rows: AuditRow[] = []
  await waitFor(async () => {
    const res = await request(`${gw.adminUrl}/api/audit?limit=1000`, { headers: { authorization: `Bearer ${ADMIN}` } })
    rows = ((await res.body.json()) as AuditRow[]).filter((r) => r.path === path)
    return rows.length >= count
  }, `${count} audit records for ${path}`)
  return rows
}

const proxies: Array<[string, string, () => Promise<Proxy>]> = [
  ['nginx', NGINX, startNginx],
  ['caddy', CADDY, startCaddy],
]

describe.each(proxies)('forward-auth behind %s', (name, binary, start) => {
  let proxy: Proxy
  const available = existsSync(binary)

  beforeAll(async () => {
    if (available) proxy = await start()
  }, 30_000)
  afterAll(async () => {
    await proxy?.stop()
  })

  it.runIf(available)('an allowed request reaches the API with the assertion and the credential, without the client\'s token or forged assertion', async () => {
    const path = `/orders/${name}-1?page=2`
    const { status, reached } = await call(proxy, path, { authorization: `Bearer ${token}`, 'x-bouncer-assertion': 'forged', 'x-upstream-key': 'the-clients-own' })
    expect(status).toBe(200)
    expect(reached).toHaveLength(1)
    const headers = reached[0]!.headers
    expect(reached[0]!.url).toBe(path)
    expect(headers['x-upstream-key']).toBe('orders-api-key-42')
    expect(headers.authorization).toBeUndefined()
    expect(decodeJwt(String(headers['x-bouncer-assertion']))).toMatchObject({ aud: 'orders-api', sub: 'looker-reports', roles: ['reports'] })
    expect(await auditOf(`/orders/${name}-1`, 1)).toEqual([expect.objectContaining({
      method: 'GET', route: 'orders', status: 200, decision: 'allow', code: null, subject: 'looker-reports', statement: 'ReadOrders', upstream: null, attempts: null,
    })])
  })

  it.runIf(available)('a client asking the check itself through the proxy gets no credential', async () => {
    for (const path of ['/.bouncer/auth', '/.bouncer/auth/health']) {
      const { status, headers, reached } = await call(proxy, path, { 'x-original-method': 'GET', 'x-original-uri': '/health' })
      expect(status, path).toBeGreaterThanOrEqual(400)
      expect(headers['x-upstream-key'], path).toBeUndefined()
      expect(reached, path).toEqual([])
    }
  })

  it.runIf(available)('a public route: the credential is injected, and a client\'s assertion never passes', async () => {
    const { status, reached } = await call(proxy, '/health', { 'x-bouncer-assertion': 'forged' })
    expect(status).toBe(200)
    expect(reached[0]!.headers['x-bouncer-assertion']).toBeUndefined()
    expect(reached[0]!.headers['x-upstream-key']).toBe('orders-api-key-42')
  })

  it.runIf(available)('no token: 401 with WWW-Authenticate, and the API is not reached', async () => {
    const { status, headers, problem, reached } = await call(proxy, `/orders/${name}-2`)
    expect(status).toBe(401)
    expect(headers['www-authenticate']).toBe('Bearer')
    expect(reached).toEqual([])
    if (name === 'caddy') expect(problem.code).toBe('missing_token') // nginx answers with its own page
    expect(await auditOf(`/orders/${name}-2`, 1)).toEqual([expect.objectContaining({ route: 'orders', status: 401, decision: 'deny', code: 'missing_token' })])
  })

  it.runIf(available)('a denial by policy: 403, named in the audit record', async () => {
    const { status, problem, reached } = await call(proxy, `/admin/${name}`, { authorization: `Bearer ${token}` })
    expect(status).toBe(403)
    expect(reached).toEqual([])
    if (name === 'caddy') expect(problem.code).toBe('policy_denied')
    expect(await auditOf(`/admin/${name}`, 1)).toEqual([expect.objectContaining({ route: 'admin', status: 403, code: 'policy_denied' })])
  })

  it.runIf(available)(`over a limit: 429 with Retry-After from Caddy; ${'500 from nginx'} (auth_request passes only 2xx, 401, 403)`, async () => {
    const fresh = await idp.mint({ sub: `limited-${name}` })
    expect((await call(proxy, '/limited', { authorization: `Bearer ${fresh}` })).status).toBe(200)
    const second = await call(proxy, '/limited', { authorization: `Bearer ${fresh}` })
    expect(second.reached).toEqual([])
    if (name === 'caddy') {
      expect(second.status).toBe(429)
      expect(second.problem.code).toBe('rate_limited')
      expect(Number(second.headers['retry-after'])).toBeGreaterThan(0)
    } else {
      expect(second.status).toBe(500)
    }
    const rows = await auditOf('/limited', name === 'caddy' ? 4 : 2)
    expect(rows.filter((r) => r.code === 'rate_limited' && r.limit === 'one-a-minute').length).toBeGreaterThanOrEqual(1)
  })

  it.runIf(available)('a client adding the other family of headers has its own request refused, never another one decided', async () => {
    // The proxy sets its own family; the client's extra header would describe /health (public).
    const other: Record<string, string> = name === 'nginx' ? { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/health' } : { 'x-original-method': 'GET', 'x-original-uri': '/health' }
    const { status, reached, problem } = await call(proxy, `/admin/${name}-smuggled`, other)
    expect(reached).toEqual([])
    expect(status).toBe(name === 'caddy' ? 400 : 500)
    if (name === 'caddy') expect(problem.code).toBe('bad_request')
  })
})
