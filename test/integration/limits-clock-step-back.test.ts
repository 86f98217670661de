// Found by an adversarial probe (helper): with the wall clock stepped back two hours (an NTP step), a 1/m burst 2 limit answered Retry-After 7260 and t=7320: the stored arrival time was kept however far ahead of now it was (memory store).
import { request } from 'undici'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let gw: TestGateway | undefined

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
})
afterEach(async () => {
  vi.useRealTimers()
  await gw?.close()
})
afterAll(async () => {
  await upstream.close()
})

async function hit(client: string) {
  const res = await request(`${gw?.url}/r`, { headers: { 'x-client': client } })
  await res.body.text()
  return { status: res.statusCode, retryAfter: res.headers['retry-after'], ratelimit: res.headers.ratelimit, policy: res.headers['ratelimit-policy'] }
}

describe('the wall clock stepping back under a rate limit (memory store)', () => {
  it('a spent caller waits at most the policy window, not the size of the step', async () => {
    // Only Date is faked (timers stay real), before the gateway starts: the store keeps Date.now.
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(new Date('2027-03-14T12:00:00.000Z'))
    gw = await startTestGateway({
      upstreams: [{ name: 'api', url: upstream.url }],
      limits: [{ name: 'pace', key: 'header:X-Client', rate: '1/m', burst: 2 }],
      routes: [{ id: 'r', path: '/r', upstream: 'api', public: true, limits: ['pace'] }],
    })
    expect((await hit('clock')).status).toBe(200)
    expect((await hit('clock')).status).toBe(200)
    expect(await hit('clock')).toMatchObject({ status: 429, retryAfter: '60', ratelimit: '"pace";r=0;t=120' })
    vi.setSystemTime(new Date('2027-03-14T10:00:00.000Z')) // two hours back
    // Still spent (the step gives nothing away), and told the policy's own wait.
    expect(await hit('clock')).toEqual({ status: 429, retryAfter: '60', ratelimit: '"pace";r=0;t=120', policy: '"pace";q=2;w=120' })
    // The window later, and 5 ms: the stores' clock (limits/clock.ts) adds performance.now's fraction
    // to the wall clock, whose phase after a step it knows to within 1.5 ms only; this frozen Date
    // never ticks, so the stores saw the real milliseconds the requests took pass before the step.
    vi.setSystemTime(new Date('2027-03-14T10:01:00.005Z'))
    expect(await hit('clock')).toMatchObject({ status: 200, ratelimit: '"pace";r=0;t=120' })
  })
})
