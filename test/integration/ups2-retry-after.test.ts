// A 503 that says when to come back (Retry-After, RFC 9110 §10.2.3) from the only target of an
// upstream whose retries cover 503: the gateway sent the request again at once to the same target,
// which had just asked for time, `attempts` times over (an overloaded upstream got attempts× its
// load in the very moment it asked for less), and the client waited for all of them. Such an
// answer is not sent again to a target already tried: it goes to the client as it is, Retry-After
// included. Another target is still tried, and a 503 without Retry-After (or Retry-After: 0) is
// still retried on the same one.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { metricValue } from '../helpers/wait.ts'

const closeLater = closeAfterEach()

/** Answers 503 with the Retry-After its path names (/wait/30, /wait/0, /wait/date, /wait/twice: two fields, /wait/none), or 200 for any other path; counts each path. */
async function overloaded(name: string) {
  const asked = new Map<string, number>()
  const upstream = await startUpstream((req, res) => {
    const path = req.url as string
    asked.set(path, (asked.get(path) ?? 0) + 1)
    const wait = /^\/wait\/(.+)$/.exec(path)?.[1]
    if (wait === undefined) return void res.end(name)
    const headers: Record<string, string> = { 'content-type': 'text/plain' }
    if (wait === 'date') headers['retry-after'] = new Date(Date.now() + 60_000).toUTCString()
    else if (wait !== 'none' && wait !== 'twice') headers['retry-after'] = wait
    // An app and its own proxy each adding one.
    if (wait === 'twice') res.setHeader('retry-after', ['30', '30'])
    res.writeHead(503, headers)
    res.end(`busy ${name}`)
  })
  closeLater(() => upstream.close())
  return { url: upstream.url, asked: (path: string) => asked.get(path) ?? 0 }
}

describe('a 503 with Retry-After, under retries on 503', () => {
  it('from the only target: passed on at once, Retry-After included, not sent again', async () => {
    const only = await overloaded('only')
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', url: only.url, retries: { attempts: 3, on: ['503'], budget: '100%' } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    for (const wait of ['30', 'date', 'twice']) {
      const res = await request(`${gw.url}/wait/${wait}`)
      expect(res.statusCode).toBe(503)
      expect(await res.body.text()).toBe('busy only')
      expect(res.headers['retry-after'], wait).toBeDefined()
      expect(only.asked(`/wait/${wait}`), wait).toBe(1)
    }
    expect(await metricValue(gw.adminUrl, 'bouncer_upstream_retries_total{upstream="api"}')).toBe(0)
    // No time asked for: retried as before.
    for (const wait of ['none', '0']) {
      const res = await request(`${gw.url}/wait/${wait}`)
      expect(res.statusCode).toBe(503)
      await res.body.dump()
      expect(only.asked(`/wait/${wait}`), wait).toBe(3)
    }
  })

  it('from one of two targets: the other is asked, the first not again', async () => {
    const busy = await overloaded('busy')
    const idle = await overloaded('idle')
    const gw = await startTestGateway({
      upstreams: [{ name: 'api', targets: [busy.url, idle.url], balance: 'round_robin', retries: { attempts: 3, on: ['503'], budget: '100%' } }],
      routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
    })
    closeLater(() => gw.close())
    // Both answer 503 with Retry-After: each is asked once, and the client gets the last answer.
    const res = await request(`${gw.url}/wait/30`)
    expect(res.statusCode).toBe(503)
    await res.body.dump()
    expect(res.headers['retry-after']).toBe('30')
    expect(busy.asked('/wait/30') + idle.asked('/wait/30')).toBe(2)
    expect(busy.asked('/wait/30')).toBe(1)
  })
})
