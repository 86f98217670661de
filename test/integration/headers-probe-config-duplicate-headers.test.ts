// An upstream's configured `headers` naming one header twice, in two spellings YAML keeps apart
// (`Authorization` and `authorization`, as a Helm or Kustomize overlay merging case-sensitively
// makes; `X-Tenant` and `X_Tenant`, which a folding upstream reads as one). The config was
// accepted, and the upstream got the header twice: Node keeps the first Authorization, others the
// last or both joined, and forward-auth's answer the last only, so which credential was sent
// depended on who read it.
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../src/config/index.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'

let upstream: TestUpstream

beforeAll(async () => {
  upstream = await startUpstream()
})

afterAll(() => upstream?.close())

describe('an upstream header configured twice under two spellings', () => {
  it.each([
    ['Authorization', 'authorization'],
    ['X-Tenant', 'X_Tenant'],
  ])('%s and %s: refused at start, naming both, not sent twice', async (first, second) => {
    const started = await startTestGateway({
      upstreams: [{ name: 'api', url: upstream.url, headers: { [first]: 'Bearer old-credential', [second]: 'Bearer new-credential' } }],
      routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
    }).catch((err: Error) => err)
    if (!(started instanceof Error)) {
      const res = await request(`${started.url}/x`)
      const received = (await res.body.json()) as Received
      await started.close()
      expect.fail(`started, and the upstream got ${JSON.stringify(received.rawHeaders.filter((_, i) => /credential/.test(received.rawHeaders[i + 1] ?? '')))}`)
    }
    expect(started.message).toContain(`upstreams[0].headers.${second}: ${second} names the header ${first} names already`)
  })

  it('bouncer check says so at the second one’s line', () => {
    const text = 'upstreams: [{ name: api, url: "http://127.0.0.1:9", headers: { Authorization: a, authorization: b } }]\n'
    const diagnostics = loadConfigText(text, 'bouncer.yaml', {}).diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))
    expect(diagnostics).toEqual([expect.stringContaining('upstreams[0].headers.authorization: authorization names the header Authorization names already')])
  })
})
