// Found by an adversarial probe (helper). A rate whose interval is not a whole number of milliseconds (1000 ms / 6, / 7, / 11 …): a fresh
// key must still absorb its whole burst at once, and RateLimit must say so (r = burst - 1 after
// the first request), as the Redis store (integer microseconds) does.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryStore } from '../../src/limits/stores/memory.ts'
import { compileRouteLimits } from '../../src/limits/route-limits.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  gw = await startTestGateway({
    upstreams: [{ name: 'api', url: upstream.url }],
    limits: [
      { name: 'six', key: 'header:X-Client', rate: '6/s' },
      { name: 'seven', key: 'header:X-Client', rate: '7/s' },
      { name: 'sixty', key: 'header:X-Client', rate: '60/s' },
    ],
    routes: [
      { id: 'six', path: '/six', upstream: 'api', public: true, limits: ['six'] },
      { id: 'seven', path: '/seven', upstream: 'api', public: true, limits: ['seven'] },
      { id: 'sixty', path: '/sixty', upstream: 'api', public: true, limits: ['sixty'] },
    ],
  })
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
})

async function first(path: string, client: string): Promise<string | undefined> {
  const res = await request(`${gw.url}${path}`, { headers: { 'x-client': client } })
  await res.body.text()
  return res.headers.ratelimit as string | undefined
}

describe('GCRA with a fractional emission interval (memory store, real gateway)', () => {
  it.each([
    ['six', 6],
    ['seven', 7],
    ['sixty', 60],
  ])('the first request of a fresh key on rate %s leaves burst - 1 in RateLimit', async (name, burst) => {
    const header = await first(`/${name}`, `fresh-${name}-${Math.random()}`)
    expect(header).toMatch(new RegExp(`^"${name}";r=${burst - 1};t=1$`))
  })
})

describe('GCRA with a fractional emission interval (memory store, fixed clock)', () => {
  it.each([6, 7, 11, 13, 60])('a fresh key on rate %i/s absorbs its whole burst at once', (count) => {
    const at = 1_796_228_156_016 // an ordinary present-day epoch millisecond
    const store = createMemoryStore({ maxKeys: 1000, now: () => at })
    const limits = compileRouteLimits(['l'], [{ name: 'l', key: 'route', rate: { count, periodMs: 1000, text: `${count}/s` }, ip_prefix_v6: 64 } as never])!
    const part = limits.parts[0]!
    let allowed = 0
    for (let i = 0; i < count + 1; i++) {
      const result = store.take([{ key: 'k', rate: part.rate, quota: null }])
      if (result.refused === -1) allowed++
    }
    expect(allowed).toBe(count)
  })
})
