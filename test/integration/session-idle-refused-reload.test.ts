// A reload refused after its compile (here: its admin tokens, read from the secrets store, are one
// value) that shortened sign_in.session.idle had already set it on the session store at its
// compile. The store keeps a shortened timeout's cutoff (a longer one brings back no session that
// had ended), so at the next reload that served, every session idle past the refused config's
// timeout was ended for good, though no config that served ever had that timeout.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { signInConfig, startSignInProvider, storedSession, UNUSED_ORIGIN } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'session-idle-refused-admin-0123456789'
const env = { IDLE_REFUSED_SECRET_ADMIN_TOKEN: 'same-value-0123456789', IDLE_REFUSED_SECRET_READ_TOKEN: 'same-value-0123456789' }
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

function config(idle: string): Record<string, unknown> {
  return {
    ...signInConfig(idp, { session: { store: { type: 'memory' }, idle } }),
    admin: { token: ADMIN_TOKEN },
    roles: [{ name: 'people', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
  }
}

beforeAll(async () => {
  upstream = await startUpstream()
  idp = await startSignInProvider(UNUSED_ORIGIN)
  gateway = await startTestGateway(config('1h'), { env })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('sso')?.state === 'ready', 'the issuer keys')
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

const session = (subject: string, idleFor = 0) => storedSession(gateway, subject, idleFor)

async function status(cookie: string): Promise<number> {
  const res = await request(`${gateway.url}/app/x`, { headers: { cookie } })
  await res.body.dump()
  return res.statusCode
}

async function reload(): Promise<{ status: number; body: string }> {
  const res = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  return { status: res.statusCode, body: await res.body.text() }
}

it('a refused reload\'s shorter session.idle ends no session: one idle 10 minutes lives on after the next reload that serves', async () => {
  // Idle 10 minutes: live under the 1h in force. Not asked for before the end: a request of its
  // would mark it used now.
  const ann = await session('ann', 10 * 60_000)

  await gateway.writeConfig({
    ...config('5m'),
    admin: { token: '${secret:admin-token}', read_token: '${secret:read-token}' },
    secrets: { store: { type: 'env', prefix: 'IDLE_REFUSED_SECRET_' } },
  })
  const refused = await reload()
  expect(refused.status, refused.body).toBe(422)
  expect(refused.body).toContain('admin.read_token has the same value as admin.token') // refused after its compile

  await gateway.writeConfig(config('1h'))
  const served = await reload()
  expect(served.status, served.body).toBe(200)
  expect(await status(ann)).toBe(200) // under the 1h that every config that served had
})
