// Found by the limits probe (helper): a reload that lengthens a quota's window (`5/h` to `3/d`, or
// `/m` to `/h`) in the in-process stores read each caller's count of the current hour as a count
// for a *later* day — the hour's index taken as a day's index, some 1,300 years ahead — the branch
// kept for a wall clock stepped back. The caller was counted on in that far window: its RateLimit
// said t=41000000000-odd seconds, and once the new count was used up it was refused with such a
// Retry-After and "it resets at +003337-…". README: a reload that changes a quota's window counts
// afresh in the new window (Redis keeps a key per window, and always did).
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { closeAfterEach, upstreamForFile } from '../helpers/lifecycle.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { waitFor } from '../helpers/wait.ts'

const upstream = upstreamForFile((_req, res) => void res.end('ok'))
const closeLater = closeAfterEach()

function configWith(quota: string, limitsStore: object): Record<string, unknown> {
  return {
    upstreams: [{ name: 'api', url: upstream().url }],
    limits: [{ name: 'q', key: 'header:X-Client', quota }],
    limits_store: limitsStore,
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true, limits: ['q'] }],
  }
}

async function hit(gw: TestGateway, client: string) {
  const res = await request(`${gw.url}/r`, { headers: { 'x-client': client } })
  const text = await res.body.text()
  return { status: res.statusCode, retryAfter: res.headers['retry-after'], ratelimit: res.headers.ratelimit, detail: text.startsWith('{') ? (JSON.parse(text) as { detail: string }).detail : null }
}

/** RateLimit's t: seconds until the quota is whole again. */
function secondsLeft(ratelimit: unknown): number {
  return Number(/;t=(\d+)$/.exec(String(ratelimit))?.[1])
}

describe.each(['memory', 'redis'] as const)('%s store: a reload that lengthens a quota\'s window', (store) => {
  it.each([['5/h', '3/d', 86_400], ['5/m', '3/h', 3_600]])('%s to %s counts afresh in the new window', async (before, after, periodS) => {
    const storeConfig = store === 'redis' ? { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('quota-period-reload') } : { type: 'memory' }
    const gw = await startTestGateway(configWith(before, storeConfig))
    closeLater(() => gw.close())
    if (store === 'redis') await waitFor(() => gw.state.runtime.limiter.store.status() === 'ready', 'redis')
    expect((await hit(gw, 'ann')).status).toBe(200)
    expect((await hit(gw, 'ann')).status).toBe(200)

    await gw.writeConfig(configWith(after, storeConfig))
    expect((await gw.reload()).ok).toBe(true)
    const first = await hit(gw, 'ann')
    expect(first.status).toBe(200)
    expect(first.ratelimit).toMatch(/^"q";r=2;t=\d+$/)
    expect(secondsLeft(first.ratelimit)).toBeLessThanOrEqual(periodS)
    expect((await hit(gw, 'ann')).status).toBe(200)
    expect((await hit(gw, 'ann')).status).toBe(200)
    const refused = await hit(gw, 'ann')
    expect(refused.status).toBe(429)
    expect(Number(refused.retryAfter)).toBeLessThanOrEqual(periodS)
    expect(refused.detail).toMatch(/resets at \d{4}-/)
  })
})
