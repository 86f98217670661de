// Found by the front-door probe: the gateway removes the client-address headers that rival its own
// X-Forwarded-For (X-Real-IP, X-Client-IP, Forwarded: README "What reaches the upstream"), but
// passed on the ones CDNs and load balancers write and applications written behind them read as
// the caller's address: Cloudflare's CF-Connecting-IP, Akamai's and Cloudflare's True-Client-IP,
// Fastly-Client-IP, X-Cluster-Client-IP, Rails' Client-IP, and the X-Forwarded and Forwarded-For
// that npm's request-ip reads. Any client could name any address to such an upstream (its IP
// allow-lists, its logs), though the gateway itself, its limits and its audit record knew better.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { publicCatchAll, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream
let gateway: TestGateway
let port: number

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'] },
    ...publicCatchAll(upstream.url),
  })
  port = Number(new URL(gateway.url).port)
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

const RIVALS = ['CF-Connecting-IP', 'CF-Connecting-IPv6', 'True-Client-IP', 'Fastly-Client-IP', 'X-Cluster-Client-IP', 'Client-IP', 'X-Forwarded', 'Forwarded-For', 'X-Originating-IP']

describe('client-address headers of CDNs and load balancers', () => {
  it('never reach the upstream, nor their look-alikes; X-Forwarded-For says the address, as the gateway knows it', async () => {
    const lines = RIVALS.map((name) => `${name}: 6.6.6.6\r\n`).join('')
    const res = await rawRequest(port, `GET /who HTTP/1.1\r\nHost: gw\r\n${lines}True_Client_IP: 6.6.6.6\r\nX-Forwarded-For: 9.9.9.9\r\n\r\n`)
    expect(res.status).toBe(200)
    const received = upstream.received.find((r) => r.url === '/who')
    const leaked = Object.entries(received?.headers ?? {}).filter(([, value]) => String(value).includes('6.6.6.6'))
    expect(leaked).toEqual([])
    // From a trusted proxy, its X-Forwarded-For is the one kept (control).
    expect(received?.headers['x-forwarded-for']).toBe('9.9.9.9, 127.0.0.1')
  })
})
