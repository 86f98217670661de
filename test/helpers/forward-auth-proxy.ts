// nginx (auth_request) and Caddy (forward_auth) from Debian's packages in front of an API, asking a
// gateway's /.bouncer/auth, each configured with the snippet from docs/forward-auth.md as it is
// written there (only the ports change), run as a child process on loopback.
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe } from 'vitest'
import { startProcess, type Started } from '../../bench/lib/processes.ts'
import { closedPort } from './faults.ts'
import { startTestGateway, type TestGateway } from './gateway.ts'
import { startUpstream, type TestUpstream } from './upstream.ts'
import { waitFor } from './wait.ts'

export const NGINX = '/usr/sbin/nginx'
export const CADDY = '/usr/bin/caddy'
const GUIDE = new URL('../../docs/forward-auth.md', import.meta.url)

export interface ForwardAuthProxy {
  url: string
  port: number
  stop(): Promise<void>
}

export function proxyAvailable(kind: 'nginx' | 'caddy'): boolean {
  return existsSync(kind === 'nginx' ? NGINX : CADDY)
}

/** The fenced block after `<!-- snippet: NAME -->` in the guide, with the guide's ports (gateway 8080, API 9500, proxy 8000) replaced. */
async function snippet(name: string, ports: { gateway: number; api: number; proxy: number }): Promise<string> {
  const guide = await readFile(GUIDE, 'utf8')
  const found = new RegExp(`<!-- snippet: ${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(guide)
  if (!found) throw new Error(`docs/forward-auth.md has no snippet "${name}"`)
  return (found[1] as string)
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${ports.gateway}`)
    .replaceAll('127.0.0.1:9500', `127.0.0.1:${ports.api}`)
    .replaceAll(':8000', `:${ports.proxy}`)
}

/** `probePath`: a path the proxy answers once it listens (any status). */
export async function startForwardAuthProxy(kind: 'nginx' | 'caddy', dir: string, gatewayUrl: string, apiPort: number, probePath = '/'): Promise<ForwardAuthProxy> {
  const ports = { gateway: Number(new URL(gatewayUrl).port), api: apiPort, proxy: await closedPort() }
  const home = join(dir, kind)
  let started: Started
  if (kind === 'nginx') {
    await mkdir(join(home, 'logs'), { recursive: true })
    const conf = join(home, 'nginx.conf')
    await writeFile(conf, `daemon off;\nmaster_process off;\nworker_processes 1;\npid ${home}/nginx.pid;\nerror_log stderr warn;\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n  client_body_temp_path ${home}/client_body;\n  proxy_temp_path ${home}/proxy;\n  fastcgi_temp_path ${home}/fastcgi;\n  uwsgi_temp_path ${home}/uwsgi;\n  scgi_temp_path ${home}/scgi;\n${await snippet('nginx', ports)}\n}\n`)
    started = await startProcess(NGINX, ['-p', home, '-c', conf], null, { core: null })
  } else {
    await mkdir(home, { recursive: true })
    const file = join(home, 'Caddyfile')
    // No admin endpoint (its port is shared); HOME and the XDG dirs are the run's.
    await writeFile(file, `{\n\tadmin off\n\tauto_https off\n}\n\n${await snippet('caddy', ports)}`)
    const env = { HOME: home, XDG_DATA_HOME: join(home, 'data'), XDG_CONFIG_HOME: join(home, 'config') }
    started = await startProcess(CADDY, ['run', '--config', file, '--adapter', 'caddyfile'], null, { core: null, env })
  }
  const url = `http://127.0.0.1:${ports.proxy}`
  await waitFor(async () => {
    try {
      await (await request(`${url}${probePath}`)).body.dump()
      return true
    } catch {
      return false
    }
  }, `${kind} at ${url}\n${started.output()}`, 20_000)
  return { url, port: ports.proxy, stop: () => started.stop() }
}

/** The gateway the proxies ask, the API behind them and a directory for their files: the test file's, for its tests. */
export interface ForwardAuthSetup {
  dir: string
  api: TestUpstream
  gw: TestGateway
}

/** A gateway taking forward-auth checks from loopback, with one public route /health to the API: what the proxies' readiness probe asks. */
function healthOnly(api: TestUpstream): Record<string, unknown> {
  return {
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
    upstreams: [{ name: 'api', url: api.url }],
    routes: [{ id: 'health', path: '/health', upstream: 'api', public: true }],
  }
}

/**
 * A directory, an API and a gateway made before the file's tests (`config`: the gateway's, default
 * healthOnly; it must answer /health) and closed after them. Read the getter inside a test or a hook.
 */
export function forwardAuthSetup(prefix: string, config: (dir: string, api: TestUpstream) => Record<string, unknown> = (_, api) => healthOnly(api)): () => ForwardAuthSetup {
  let setup: ForwardAuthSetup | undefined
  let dir: string | undefined
  let api: TestUpstream | undefined
  beforeAll(async () => {
    const made = { dir: (dir = await mkdtemp(join(tmpdir(), `bouncer-${prefix}-`))), api: (api = await startUpstream()) }
    setup = { ...made, gw: await startTestGateway(config(made.dir, made.api)) }
  }, 30_000)
  afterAll(async () => {
    await setup?.gw.close()
    await api?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })
  return () => {
    if (!setup) throw new Error('the forward-auth setup starts in beforeAll: read it inside a test or a later hook')
    return setup
  }
}

/**
 * A `describe` block per proxy kind ('behind nginx', 'behind caddy'), its proxy started before the
 * block's tests and stopped after them. `tests` registers them, with `it.runIf(available)`: a kind
 * not installed here has its tests skipped; `proxy` is read inside a test.
 */
export function behindEachProxy(kinds: ReadonlyArray<'nginx' | 'caddy'>, setup: () => ForwardAuthSetup, tests: (proxy: () => ForwardAuthProxy, available: boolean) => void): void {
  describe.each(kinds)('behind %s', (kind) => {
    const available = proxyAvailable(kind)
    let proxy: ForwardAuthProxy | undefined
    beforeAll(async () => {
      const { dir, gw, api } = setup()
      if (available) proxy = await startForwardAuthProxy(kind, dir, gw.url, api.port, '/health')
    }, 30_000)
    afterAll(async () => {
      await proxy?.stop()
    })
    tests(() => proxy as ForwardAuthProxy, available)
  })
}
