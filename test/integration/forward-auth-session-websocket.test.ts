// Found by an adversarial probe (helper "browser"): cross-site WebSocket hijacking through
// forward-auth. A WebSocket handshake signed in by the session cookie needs the gateway's own
// Origin on the gateway's listener (websocket-session-origin.test.ts), but a proxy's forward-auth
// sub-request is no upgrade itself, and nginx does not pass the hop-by-hop Upgrade on with it: the
// handshake was decided as a plain GET, with no CSRF check, so a page of another origin that the
// browser sends the cookie from (a sibling subdomain under SameSite=Lax, any site under None) got
// 200, and the proxy forwarded its handshake to the application as the signed-in person. The
// described request is now a handshake when it carries Sec-WebSocket-Key. Real nginx, with the
// snippet from docs/forward-auth.md as written there (only the ports change).
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startProcess, type Started } from '../../bench/lib/processes.ts'
import { sessionId } from '../../src/identity/index.ts'
import { closedPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { signInConfig, startSignInGateway, startSignInProvider, UNUSED_ORIGIN } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const NGINX = '/usr/sbin/nginx'

let dir: string
let idp: TestIdentityProvider
let api: TestUpstream
let gateway: TestGateway
let nginx: Started
/** Where browsers reach the application: nginx, which asks the gateway first. */
let site: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-forward-auth-ws-'))
  api = await startUpstream()
  idp = await startSignInProvider(UNUSED_ORIGIN)
  const proxyPort = await closedPort()
  site = `http://127.0.0.1:${proxyPort}`
  gateway = await startSignInGateway({
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
    // The pages are nginx's: their origin is the one a state-changing request (and a handshake) must come from.
    ...signInConfig(idp, { base_url: site }),
    roles: [{ name: 'people', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    upstreams: [{ name: 'app', url: api.url }],
    routes: [{ id: 'live', path: '/live/*', upstream: 'app', accept: ['session'], websocket: true }],
  })

  const guide = await readFile(new URL('../../docs/forward-auth.md', import.meta.url), 'utf8')
  const snippet = (/<!-- snippet: nginx -->\n```\w*\n([\s\S]*?)```/.exec(guide) as RegExpExecArray)[1] as string
  const prefix = join(dir, 'nginx')
  await mkdir(prefix, { recursive: true })
  const conf = join(prefix, 'nginx.conf')
  await writeFile(conf, `daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
${snippet.replaceAll('127.0.0.1:8080', `127.0.0.1:${new URL(gateway.url).port}`).replaceAll('127.0.0.1:9500', `127.0.0.1:${api.port}`).replaceAll(':8000', `:${proxyPort}`)}
}
`)
  nginx = await startProcess(NGINX, ['-p', prefix, '-c', conf], null, { core: null })
  await waitFor(async () => {
    try {
      await (await request(`${site}/live/up`)).body.dump()
      return true
    } catch {
      return false
    }
  }, `nginx at ${site}\n${nginx.output()}`, 20_000)
}, 60_000)

afterAll(async () => {
  await nginx?.stop()
  await gateway?.close()
  await api?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** A signed-in person's session as the callback writes it; its cookie. */
async function session(subject: string): Promise<string> {
  const value = randomBytes(32).toString('base64url')
  const now = Date.now()
  await gateway.state.runtime.signIn!.store.put({
    id: sessionId(value), issuer: 'sso', subject, claims: { sub: subject, groups: ['staff'] },
    createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, refreshAt: null, sealed: null, audience: 'gateway',
  })
  return `bouncer_session=${value}`
}

/** A browser's WebSocket handshake sent to nginx: its status, and whether the application saw it. */
async function handshake(path: string, headers: Record<string, string>): Promise<{ status: number; reached: boolean }> {
  const before = api.received.length
  const res = await request(`${site}${path}`, {
    headers: { 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
  })
  await res.body.dump()
  return { status: res.statusCode, reached: api.received.slice(before).some((r) => r.url === path) }
}

describe('a WebSocket handshake signed in by the session cookie, through nginx\'s auth_request', () => {
  it('from another origin, or with none, is refused (403) and never reaches the application', async () => {
    const cookie = await session('alice')
    expect(await handshake('/live/hijack', { cookie, origin: 'https://evil.example' })).toEqual({ status: 403, reached: false })
    expect(await handshake('/live/no-origin', { cookie })).toEqual({ status: 403, reached: false })
  })

  it('from the site\'s own pages goes on to the application', async () => {
    const cookie = await session('alice')
    expect(await handshake('/live/own', { cookie, origin: site })).toEqual({ status: 200, reached: true })
  })
})
