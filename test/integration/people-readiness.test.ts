// The session store in /readyz (a probe: with the Redis session store stopped, every session
// request answered 503 while /readyz named nothing). Counted as the Redis limits store is: not
// ready until it has connected once; a later outage shows in the checks only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeAll } from '../helpers/browser.ts'
import { readyz, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startRedis, uniquePrefix, type TestRedis } from '../helpers/redis.ts'
import { signInConfig, startSignInProvider, UNUSED_ORIGIN } from '../helpers/sign-in.ts'
import { waitFor } from '../helpers/wait.ts'

let idp: TestIdentityProvider
let redis: TestRedis
let gateway: TestGateway | undefined

beforeAll(async () => {
  idp = await startSignInProvider(UNUSED_ORIGIN)
  redis = await startRedis()
})

afterAll(() => closeAll(gateway, redis, idp))

function config(): Record<string, unknown> {
  return {
    ...signInConfig(idp, { session: { store: { type: 'redis', url: redis.url, prefix: uniquePrefix('people-readiness'), timeout: '200ms' } } }),
    upstreams: [{ name: 'app', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'people', path: '/people/*', upstream: 'app', accept: ['session'] }],
  }
}

describe('the Redis session store in /readyz', { timeout: 60_000 }, () => {
  it('names it; an outage after it connected shows there without taking the gateway out', async () => {
    gateway = await startTestGateway(config())
    await waitFor(async () => (await readyz(gateway!)).status === 200, 'ready')
    expect((await readyz(gateway)).checks.session_store).toBe('ready')
    await redis.stop()
    await waitFor(async () => (await readyz(gateway!)).checks.session_store?.startsWith('unavailable') === true, 'the outage in /readyz')
    expect((await readyz(gateway)).status).toBe(200)
    await redis.start()
    await waitFor(async () => (await readyz(gateway!)).checks.session_store === 'ready', 'the store back')
    await gateway.close()
    gateway = undefined
  })

  it('a gateway whose session store never answered is not ready', async () => {
    await redis.stop()
    gateway = await startTestGateway(config())
    const first = await readyz(gateway)
    expect(first.status).toBe(503)
    expect(first.checks.session_store).toMatch(/^(connecting|unavailable: .+)$/)
    await redis.start()
    await waitFor(async () => (await readyz(gateway!)).status === 200, 'ready once the store connected')
  })
})
