// An upstream's configured `headers` with Expect: the gateway answers a client's Expect itself
// (100 Continue) and never forwards it, and its HTTP client (undici) refuses to send one. The config
// was accepted, by `bouncer check` and at start, and then every request to that upstream failed
// with 502 "failed mid-exchange", which named nothing to fix.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../src/config/index.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream

beforeAll(async () => {
  upstream = await startUpstream()
})

afterAll(() => upstream?.close())

const config = (name: string) => ({
  upstreams: [{ name: 'api', url: upstream.url, headers: { [name]: '100-continue' } }],
  routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
})

describe('an upstream header Expect in the config', () => {
  it.each(['Expect', 'expect', 'EXPECT'])('%s is refused at start, naming the header, not accepted for every request to fail with 502', async (name) => {
    const started = await startTestGateway(config(name)).catch((err: Error) => err)
    if (!(started instanceof Error)) {
      const res = await request(`${started.url}/x`)
      const body = await res.body.text()
      await started.close()
      expect.fail(`started, and a request got ${res.statusCode} ${body}`)
    }
    expect(started.message).toContain(`upstreams[0].headers.${name}: the gateway sets ${name} itself; it cannot be configured`)
  })

  it('bouncer check says so at its line', () => {
    const text = 'upstreams: [{ name: api, url: "http://127.0.0.1:9", headers: { Expect: 100-continue } }]\n'
    const diagnostics = loadConfigText(text, 'bouncer.yaml', {}).diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
    expect(diagnostics).toEqual([expect.stringContaining('upstreams[0].headers.Expect: the gateway sets Expect itself')])
  })
})
