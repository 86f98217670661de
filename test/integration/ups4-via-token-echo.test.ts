// The token in the gateway's Via entries (`1.1 bouncer (TOKEN)`) is how it knows its own forwards
// from a client's look-alikes (ups3-forged-via-loop): the answers' Via carries none, so a client
// never learns it. An upstream that echoed the request's Via in a header of its answer (a debug
// header, a proxy before the app that copies it back) handed the token to every client, who could
// then forge entries the loop check counts. Those header lines are withheld, as an echoed
// credential's are; the rest of the answer passes.
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startUpstream } from '../helpers/upstream.ts'

const closeLater = closeAfterEach()

describe("an upstream that echoes the request's Via in its answer's headers", () => {
  it("does not show the client the gateway's token", async () => {
    let token = ''
    const upstream = await startUpstream((req, res) => {
      const via = req.headers.via as string
      token = /\(([^)]+)\)/.exec(via)?.[1] ?? ''
      res.setHeader('content-type', 'text/plain')
      res.setHeader('x-seen-via', via)
      res.setHeader('x-debug', [`via=${encodeURIComponent(via)}`, 'cache=miss'])
      res.setHeader('via', `${via}, 1.1 inner-cache`)
      res.end('ok')
    })
    closeLater(() => upstream.close())
    const gw = await startTestGateway({
      upstreams: [{ name: 'inner', url: upstream.url }],
      routes: [{ id: 'inner', path: '/*', upstream: 'inner', public: true }],
    })
    closeLater(() => gw.close())

    const res = await request(`${gw.url}/a`)
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('ok')
    expect(token).toMatch(/^[A-Za-z0-9_-]{8,}$/)
    for (const [name, value] of Object.entries(res.headers)) {
      expect(`${name}: ${String(value)}`).not.toContain(token)
    }
    expect(res.headers['x-seen-via']).toBeUndefined()
    expect(res.headers['x-debug']).toBe('cache=miss')
    expect(res.headers.via).toBe('1.1 bouncer')
  })
})
