// Found by an adversarial probe (helper). What crosses the gateway: trace flags sent upstream (reserved bits were passed on), and an upstream's or a function's Set-Cookie for the gateway's own session cookie (it reached the browser).
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const cleanup: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const f of cleanup.reverse()) await f()
})

async function setup(handler?: Parameters<typeof startUpstream>[0], extra: Record<string, unknown> = {}): Promise<{ gw: TestGateway; up: TestUpstream }> {
  const up = await startUpstream(handler)
  cleanup.push(() => up.close())
  const gw = await startTestGateway({
    ...extra,
    upstreams: [{ name: 'api', url: up.url }],
    routes: [{ id: 'api', path: '/*', upstream: 'api', public: true }],
  })
  cleanup.push(() => gw.close())
  return { gw, up }
}

describe('trace context sent upstream', () => {
  it('reserved trace-flags bits a client sets are zeroed, not propagated (W3C Trace Context: "Vendors MUST set those to zero")', async () => {
    const { gw, up } = await setup()
    const res = await request(`${gw.url}/x`, { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff' } })
    await res.body.dump()
    const sent = String(up.received.at(-1)?.headers.traceparent)
    expect(sent.split('-')[1]).toBe('4bf92f3577b34da6a3ce929d0e0e4736')
    const flags = parseInt(sent.split('-')[3] as string, 16)
    // Only sampled (0x01) and, in Level 2, random-trace-id (0x02) are defined.
    expect(flags & 0xfc).toBe(0)
  })
})

describe('an upstream Set-Cookie for the gateway session cookie', () => {
  it('an upstream cannot set or overwrite the gateway\'s bouncer_session cookie in the browser', async () => {
    const { gw } = await setup((_req, res) => {
      res.writeHead(200, { 'set-cookie': ['bouncer_session=attacker-chosen; Path=/; HttpOnly', 'app=1; Path=/'], 'content-type': 'text/plain' })
      res.end('ok')
    }, {
      // Browser sign-in configured: bouncer_session is the gateway's own credential cookie.
      issuers: [{ name: 'sso', issuer: 'http://127.0.0.1:9/', audiences: ['x'] }],
      sign_in: { issuer: 'sso', client_id: 'bouncer', client_secret: 'not-used-here' },
    })
    const res = await request(`${gw.url}/x`)
    await res.body.dump()
    const cookies = [res.headers['set-cookie'] ?? []].flat()
    expect(cookies).toContain('app=1; Path=/')
    expect(cookies.some((c) => /^bouncer_session=/i.test(c))).toBe(false)
  })

  it('nor can a function', async () => {
    const gw = await startTestGateway({
      issuers: [{ name: 'sso', issuer: 'http://127.0.0.1:9/', audiences: ['x'] }],
      sign_in: { issuer: 'sso', client_id: 'bouncer', client_secret: 'not-used-here' },
      functions: [{ name: 'cookies', module: fileURLToPath(new URL('../fixtures/functions/sets-cookies.mjs', import.meta.url)) }],
      routes: [{ id: 'fn', path: '/fn', function: 'cookies', public: true }],
    })
    cleanup.push(() => gw.close())
    const res = await request(`${gw.url}/fn`)
    await res.body.dump()
    const cookies = [res.headers['set-cookie'] ?? []].flat()
    expect(cookies).toContain('app=1; Path=/')
    expect(cookies.some((c) => /^bouncer_session=/i.test(c))).toBe(false)
  })
})
