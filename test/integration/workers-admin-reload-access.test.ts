// Found by an adversarial probe (helper): with server.workers >= 2 the primary answered POST /api/reload itself and let in any credential a worker accepted for a read route, so admin.read_token could reload (403 with one worker); a console session could not reload at all, and no log line said who reloaded.
// Now the primary passes the request to a worker, whose admin API checks the caller as a single
// gateway does (admin access; a console session's POST needs the listener's Origin), then asks the
// primary to reload every worker. The real `bouncer serve` with two workers.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import { AUDIENCE, startIdentityProvider, type Person, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'workers-reload-admin-token-0123456789'
const READ_TOKEN = 'workers-reload-read-token-0123456789'
const ALICE: Person = { username: 'alice', password: 'alice-password-123', name: 'Alice', email: 'alice@example.com', groups: ['platform'] }
const CLIENT = { clientId: 'bouncer-console', secret: 'bouncer-console-client-secret-0123456789' }

let dir: string
let upstream: TestUpstream
let idp: TestIdentityProvider
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-reload-'))
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startIdentityProvider({
    people: [ALICE],
    webClients: [{ ...CLIENT, redirectUris: [`http://127.0.0.1:${held.port}/.bouncer/callback`], postLogoutRedirectUris: [] }],
  })
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0', workers: 2 },
    admin: { listen: `127.0.0.1:${held.port}`, token: ADMIN_TOKEN, read_token: READ_TOKEN, roles: ['console-admins'] },
    audit: { sinks: [], spill_dir: join(dir, 'spill') },
    issuers: [{ name: 'sso', issuer: idp.issuer, audiences: [AUDIENCE] }],
    sign_in: {
      issuer: 'sso', client_id: CLIENT.clientId, client_secret: CLIENT.secret, scopes: ['openid', 'email', 'profile', 'groups'],
      session: { store: { type: 'sqlite', path: join(dir, 'sessions.db') } },
    },
    roles: [{ name: 'console-admins', assumed_by: [{ issuer: 'sso', claims: { groups: 'platform' } }], policies: [] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
  }))
  await held.release()
  gateway = await startServe(['--config', file], { startTimeout: 90_000 })
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

async function reload(headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const res = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers })
  return { status: res.statusCode, body: await res.body.text() }
}

interface Logged { msg: string; via: string | null; principal: string | null; method: string; path: string; status: number }

/** The admin API calls logged so far (each worker writes to the process's stderr). */
function adminCalls(): Logged[] {
  return gateway.stderr().split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return []
    const entry = JSON.parse(line) as Logged
    return entry.msg === 'admin API call' ? [entry] : []
  })
}

async function loggedCall(match: Partial<Logged>): Promise<Logged> {
  let found: Logged | undefined
  await waitFor(() => (found = adminCalls().find((entry) => Object.entries(match).every(([k, v]) => entry[k as keyof Logged] === v))) !== undefined, `a log line ${JSON.stringify(match)}`)
  return found as Logged
}

describe('POST /api/reload under server.workers: 2', { timeout: 120_000 }, () => {
  it('refuses the read-only token, as one gateway does, and logs the refusal', async () => {
    const refused = await reload({ authorization: `Bearer ${READ_TOKEN}` })
    expect(refused.status, refused.body).toBe(403)
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'policy_denied' })
    await loggedCall({ via: 'read_token', method: 'POST', path: '/api/reload', status: 403 })
  })

  it('reloads every worker with the admin token, and logs who did', async () => {
    const done = await reload({ authorization: `Bearer ${ADMIN_TOKEN}` })
    expect(done.status, done.body).toBe(200)
    expect(JSON.parse(done.body)).toMatchObject({ ok: true })
    await waitFor(() => (gateway.stderr().match(/"msg":"config reloaded"/g) ?? []).length >= 2, 'both workers to reload')
    await loggedCall({ via: 'token', principal: null, method: 'POST', path: '/api/reload', status: 200 })
  })

  it('lets a console admin signed in by session cookie reload, from the console\'s own Origin only', async () => {
    const client = cookieJar()
    const toLogin = await client.follow(`${gateway.adminUrl}/.bouncer/sign_in`)
    expect(toLogin.reply?.status, toLogin.reply?.body).toBe(200)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    await client.follow(loggedIn.location!)
    const session = client.cookies(gateway.adminUrl).bouncer_console
    expect(session).toBeDefined()
    const cookie = `bouncer_console=${session}`

    const forged = await reload({ cookie, origin: 'http://evil.example' })
    expect(forged.status, forged.body).toBe(403)
    expect(JSON.parse(forged.body)).toMatchObject({ code: 'cors_origin_denied' })
    const noOrigin = await reload({ cookie })
    expect(noOrigin.status, noOrigin.body).toBe(403)

    const done = await reload({ cookie, origin: gateway.adminUrl })
    expect(done.status, done.body).toBe(200)
    const logged = await loggedCall({ via: 'sign_in', status: 200 })
    expect(logged).toMatchObject({ method: 'POST', path: '/api/reload', principal: expect.stringMatching(/^sso\//) })
  })
})
