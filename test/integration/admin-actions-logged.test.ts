// Found by an adversarial probe (helper): admin actions left no record of who made them: after DELETE /api/keys/{id}, DELETE /api/sessions/{id} and POST /api/reload (all 200) no log line named the id or the caller.
// Now every admin API call but a read is logged at info with the caller (which token, or the
// console's signed-in principal), the method, the path (the id in it) and the status.
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type Person, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'admin-actions-logged-token-0123456789'
const READ_TOKEN = 'admin-actions-logged-read-0123456789'
const ALICE: Person = { username: 'alice', password: 'alice-password-123', name: 'Alice', email: 'alice@example.com', groups: ['staff'] }
const CLIENT = { clientId: 'bouncer-web', secret: 'bouncer-web-client-secret-0123456789' }

let dir: string
let upstream: TestUpstream
let idp: TestIdentityProvider
let gateway: TestGateway
let config: Record<string, unknown>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-admin-logged-'))
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startIdentityProvider({
    people: [ALICE],
    webClients: [{ ...CLIENT, redirectUris: [`http://127.0.0.1:${held.port}/.bouncer/callback`], postLogoutRedirectUris: [] }],
  })
  config = {
    admin: { token: ADMIN_TOKEN, read_token: READ_TOKEN },
    audit: { sinks: [], spill_dir: join(dir, 'spill') },
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    issuers: [{ name: 'sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
    sign_in: { issuer: 'sso', client_id: CLIENT.clientId, client_secret: CLIENT.secret, scopes: ['openid', 'email', 'profile', 'groups'] },
    roles: [{ name: 'staff', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['GET'], routes: ['app'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
  }
  await held.release()
  gateway = await startTestGateway(config, { port: held.port })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('sso')?.state === 'ready', 'the issuer keys')
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

interface Logged { level: string; msg: string; via: string | null; principal: string | null; method: string; path: string; status: number }

function adminCalls(): Logged[] {
  return gateway.logs.flatMap((line) => {
    const entry = JSON.parse(line) as Logged
    return entry.msg === 'admin API call' ? [entry] : []
  })
}

async function call(method: 'POST' | 'DELETE' | 'GET', path: string, token: string): Promise<number> {
  const res = await request(`${gateway.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${token}` } })
  await res.body.dump()
  return res.statusCode
}

describe('admin actions are logged with who made them', () => {
  it('names the caller, the method, the path and the status of a revocation, a reload and a refusal', async () => {
    // An API key, made as an operator does (the same sqlite store).
    const file = join(dir, 'cli.yaml')
    await writeFile(file, stringify({ ...config, audit: { sinks: [] } }))
    const created = await runCli(['keys', 'create', '--config', file, '--principal', 'looker'])
    expect(created.code, created.stderr).toBe(0)
    const keyId = created.stdout.trim().slice(3, 19)

    // A browser session, signed in at the provider.
    const client = cookieJar()
    const toLogin = await client.follow(`${gateway.url}/app/home`)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    const back = await client.follow(loggedIn.location!)
    expect(back.reply?.status, back.reply?.body).toBe(200)
    const sessionId = createHash('sha256').update(client.cookies(gateway.url).bouncer_session!).digest('hex').slice(0, 32)

    expect(await call('DELETE', `/api/keys/${keyId}`, ADMIN_TOKEN)).toBe(200)
    expect(await call('DELETE', `/api/sessions/${sessionId}`, ADMIN_TOKEN)).toBe(200)
    expect(await call('POST', '/api/reload', ADMIN_TOKEN)).toBe(200)
    expect(await call('POST', '/api/reload', READ_TOKEN)).toBe(403)
    expect(await call('GET', '/api/keys', READ_TOKEN)).toBe(200) // a read: not logged

    expect(adminCalls().map(({ level, via, principal, method, path, status }) => ({ level, via, principal, method, path, status }))).toEqual([
      { level: 'info', via: 'token', principal: null, method: 'DELETE', path: `/api/keys/${keyId}`, status: 200 },
      { level: 'info', via: 'token', principal: null, method: 'DELETE', path: `/api/sessions/${sessionId}`, status: 200 },
      { level: 'info', via: 'token', principal: null, method: 'POST', path: '/api/reload', status: 200 },
      { level: 'info', via: 'read_token', principal: null, method: 'POST', path: '/api/reload', status: 403 },
    ])
  })
})
