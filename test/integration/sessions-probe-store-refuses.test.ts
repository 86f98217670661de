// Found by the sessions probe: a session store that answers but refuses to write — Redis at its
// maxmemory (noeviction, Redis's default), as a full disk or a read-only replica after a failover
// would — turned every sign-in and every page load without a session (each begins a sign-in, which
// writes the store's sign-in key with SET NX) into 503 "The session store cannot be reached right
// now", and the gateway's log said nothing at all: the operator had neither the reason (OOM) nor a
// hint that the store was involved. Now the store's failure is logged with its cause and the
// store's address (at most once per 10 s: every request fails alike meanwhile), and the answer
// says the log has why. A private redis-server (its maxmemory set at run time): the machine's
// shared Redis is other tests'.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll } from '../helpers/browser.ts'
import { cookieJar, submitLogin } from '../helpers/cookie-jar.ts'
import { heldPort } from '../helpers/faults.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startRedis, type TestRedis } from '../helpers/redis.ts'
import { ALICE, analystsMayGet, SCOPES_WITH_GROUPS, sessionRoute, signInConfig, startSignInGateway, startSignInProvider } from '../helpers/sign-in.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let redis: TestRedis
let admin: Redis

beforeAll(async () => {
  redis = await startRedis()
  admin = new Redis(redis.url)
  upstream = await startUpstream()
  const held = await heldPort()
  idp = await startSignInProvider(held.port, { people: [ALICE] })
  gateway = await startSignInGateway({
    ...signInConfig(idp, { scopes: SCOPES_WITH_GROUPS, session: { store: { type: 'redis', url: redis.url, prefix: 'probe:' } } }),
    ...analystsMayGet(),
    ...sessionRoute(upstream.url),
  }, { port: held })
}, 60_000)

afterAll(() => closeAll(gateway, upstream, idp, async () => {
  admin?.disconnect()
  await redis?.stop()
}))

describe('a session store that refuses writes (Redis at its maxmemory)', { timeout: 60_000 }, () => {
  it('a page load and a callback get 503, and the log says the store failed and why', async () => {
    // Up to the provider's redirect back: the code in hand, the state cookie set.
    const client = cookieJar()
    const toLogin = await client.follow(`${gateway.url}/people/start`)
    const loggedIn = await submitLogin(client, toLogin.reply!, ALICE.username, ALICE.password)
    const callback = await client.follow(loggedIn.location!, { stop: (url) => url.startsWith(`${gateway.url}/.bouncer/callback`) })
    const from = gateway.logs.length
    await admin.config('SET', 'maxmemory', '1')
    try {
      const back = await client.request(callback.url)
      expect(back.status, back.body).toBe(503)
      expect(JSON.parse(back.body)).toMatchObject({ code: 'identity_provider_unavailable' })
      const page = await cookieJar().request(`${gateway.url}/people/report`)
      expect(page.status, page.body).toBe(503)
      expect(JSON.parse(page.body).detail).not.toContain('cannot be reached')
      await waitFor(() => gateway.logs.slice(from).some((line) => line.includes('OOM')), 'a log line naming the store\'s refusal', 5_000)
      const line = gateway.logs.slice(from).find((l) => l.includes('OOM'))!
      expect(line).toContain('session store')
      expect(line).toContain(`127.0.0.1:${redis.port}`)
    } finally {
      await admin.config('SET', 'maxmemory', '0')
    }
    // Once the store takes writes again, a sign-in works.
    const again = cookieJar()
    const login = await again.follow(`${gateway.url}/people/start`)
    const done = await submitLogin(again, login.reply!, ALICE.username, ALICE.password)
    expect((await again.follow(done.location!)).reply?.status).toBe(200)
  })
})
