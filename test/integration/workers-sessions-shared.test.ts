// Found by an adversarial probe (helper): with server.workers >= 2 the default memory session store was one per worker, so a session was unknown to the other worker and DELETE /api/sessions/{id} ended it on one worker only; `bouncer check` now refuses that config (test/unit/config/workers-session-store.test.ts).
// With a shared store (sqlite) a session signed in on one worker is honoured by every worker, an
// admin revocation ends it on every worker, and the revocation is logged with who made it.
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { get } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import type { Person, TestIdentityProvider } from '../helpers/identity-provider.ts'
import { SCOPES_WITH_GROUPS, signInConfig, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitForText } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const ADMIN_TOKEN = 'workers-sessions-admin-token-0123456789'
const ALICE: Person = { username: 'alice', password: 'alice-password-123', name: 'Alice', email: 'alice@example.com', groups: ['staff'] }

let dir: string
let upstream: TestUpstream
let idp: TestIdentityProvider
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-sessions-'))
  upstream = await startUpstream()
  ;({ gateway } = await serveWithWorkers(dir, async (port) => {
    idp = await startSignInProvider(port, { people: [ALICE] })
    return {
      admin: { listen: '127.0.0.1:0', token: ADMIN_TOKEN },
      ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: { type: 'sqlite', path: join(dir, 'sessions.db') } } }),
      roles: [{ name: 'staff', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['all'] }],
      policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['GET'], routes: ['app'] }] }],
      upstreams: [{ name: 'app', url: upstream.url }],
      routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
    }
  }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** A request on a new connection (so the kernel may hand it to either worker): its status. */
function fresh(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, headers }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    }).on('error', reject)
  })
}

describe('sign-in sessions under server.workers: 2 (sqlite store)', { timeout: 120_000 }, () => {
  it('a signed-in session is honoured by every worker, and an admin revocation ends it on every worker', async () => {
    const client = cookieJar()
    const toLogin = await client.follow(`${gateway.url}/app/home`)
    expect(toLogin.reply?.status, toLogin.reply?.body).toBe(200)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    const back = await client.follow(loggedIn.location!)
    expect(back.reply?.status, `${back.url} ${back.reply?.body}`).toBe(200)
    const value = client.cookies(gateway.url).bouncer_session!
    const cookie = { cookie: `bouncer_session=${value}` }

    const before: number[] = []
    for (let i = 0; i < 16; i++) before.push(await fresh(`${gateway.url}/app/home`, cookie))
    const id = createHash('sha256').update(value).digest('hex').slice(0, 32)
    const deleted = await request(`${gateway.adminUrl}/api/sessions/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    await deleted.body.dump()
    const after: number[] = []
    for (let i = 0; i < 16; i++) after.push(await fresh(`${gateway.url}/app/home`, cookie))
    expect({ before: [...new Set(before)], deleted: deleted.statusCode, after: [...new Set(after)] }).toEqual({ before: [200], deleted: 200, after: [401] })

    const logs = await waitForText(gateway.stderr, `"path":"/api/sessions/${id}"`)
    const line = logs.split('\n').find((l) => l.includes(`"path":"/api/sessions/${id}"`)) as string
    expect(JSON.parse(line)).toMatchObject({ level: 'info', msg: 'admin API call', via: 'token', method: 'DELETE', status: 200 })
  })
})
