// Found by an adversarial probe (helper): a reload that changed only sign_in.session.idle opened a new, empty memory session store (the idle timeout was part of the store's identity), signing every person out; the docs promise memory sessions survive a reload that keeps the store setting.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { signInConfig, startSignInGateway, startSignInProvider, storedSession, UNUSED_ORIGIN } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

function config(idle: string): Record<string, unknown> {
  return {
    ...signInConfig(idp, { session: { store: { type: 'memory' }, idle } }),
    roles: [{ name: 'people', assumed_by: [{ issuer: 'sso', claims: { groups: 'staff' } }], policies: ['all'] }],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', accept: ['session'] }],
  }
}

beforeAll(async () => {
  upstream = await startUpstream()
  idp = await startSignInProvider(UNUSED_ORIGIN)
  gateway = await startSignInGateway(config('1h'))
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

async function reloadWith(idle: string): Promise<void> {
  await gateway.writeConfig(config(idle))
  const reloaded = await gateway.reload()
  expect(reloaded.ok, JSON.stringify(reloaded)).toBe(true)
}

describe('the memory session store across a reload that changes only session.idle', () => {
  it('keeps every session, and the new idle timeout applies to those still live', async () => {
    const ann = await session('ann')
    // Last used 90 minutes ago: ended under the 1h in force, not yet swept (the sweep runs once a minute).
    const ben = await session('ben', 90 * 60_000)
    expect(await status(ann)).toBe(200)

    await reloadWith('2h')
    expect(await status(ann)).toBe(200)
    // A longer timeout brings back no session that had ended (an adversarial probe; sign-in-probe-idle-reload-revival).
    expect(await status(ben)).toBe(401)

    await reloadWith('1h')
    expect(await status(ann)).toBe(200)
    const cal = await session('cal', 90 * 60_000)
    expect(await status(cal)).toBe(401)
  })
})
