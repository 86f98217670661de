// Found by an adversarial probe (helper): a reload that raised a rate (1/h -> 100/s burst 100) did not take effect until the old rate's debt ran out: the stored arrival time, an hour ahead, answered 429 with Retry-After 3600 under a policy whose whole window is one second (memory and Redis stores).
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { closeAfterEach, upstreamForFile } from '../helpers/lifecycle.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { waitFor } from '../helpers/wait.ts'

const upstream = upstreamForFile((_req, res) => void res.end('ok'))
const closeLater = closeAfterEach()

function configWith(limits: object[], limitsStore: object): Record<string, unknown> {
  return {
    upstreams: [{ name: 'api', url: upstream().url }],
    limits,
    limits_store: limitsStore,
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true, limits: ['pace'] }],
  }
}

async function hit(gw: TestGateway, client: string) {
  const res = await request(`${gw.url}/r`, { headers: { 'x-client': client } })
  await res.body.text()
  return { status: res.statusCode, retryAfter: res.headers['retry-after'], ratelimit: res.headers.ratelimit, policy: res.headers['ratelimit-policy'] }
}

describe.each(['memory', 'redis'] as const)('%s store: a reload that raises a rate', (store) => {
  const limitsStore = () => (store === 'redis' ? { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('reload-raised-rate') } : { type: 'memory' })

  it('holds a spent caller to the new rate\'s empty bucket, not to the old hour', async () => {
    const storeConfig = limitsStore()
    const gw = await startTestGateway(configWith([{ name: 'pace', key: 'header:X-Client', rate: '1/h', burst: 1 }], storeConfig))
    closeLater(() => gw.close())
    if (store === 'redis') await waitFor(() => gw.state.runtime.limiter.store.status() === 'ready', 'redis')
    expect((await hit(gw, 'slow')).status).toBe(200)
    expect(await hit(gw, 'slow')).toMatchObject({ status: 429, retryAfter: expect.stringMatching(/^(3599|3600)$/) })

    await gw.writeConfig(configWith([{ name: 'pace', key: 'header:X-Client', rate: '100/s', burst: 100 }], storeConfig))
    expect((await gw.reload()).ok).toBe(true)
    // Spent stays spent, but under the new policy: a wait of one interval, never more than w=1.
    expect(await hit(gw, 'slow')).toEqual({ status: 429, retryAfter: '1', ratelimit: '"pace";r=0;t=1', policy: '"pace";q=100;w=1' })
    await waitFor(async () => (await hit(gw, 'slow')).status === 200, 'the new rate to let the caller through', 2_000)
    // A full bucket is full at the new burst.
    expect(await hit(gw, 'fresh')).toEqual({ status: 200, retryAfter: undefined, ratelimit: '"pace";r=99;t=1', policy: '"pace";q=100;w=1' })
  })
})
