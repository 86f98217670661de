// Found by a probe: requests Node's HTTP/1.1 parser refused before the pipeline (408 at
// headers_timeout, 431 for a header flood, 400 for a malformed request) were audited but not in
// bouncer_requests_total, so slowloris and header floods did not show on the dashboards.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { metricValue } from '../helpers/wait.ts'

let gateway: TestGateway

beforeAll(async () => {
  gateway = await startTestGateway({
    server: { max_header_bytes: 4096 },
    admin: { listen: '127.0.0.1:0', token: 'parser-refusals-admin-token-0123' },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true }],
  })
}, 30_000)

afterAll(async () => {
  await gateway?.close()
})

it('counts the parser\'s refusals in bouncer_requests_total as route (none), deny', async () => {
  const port = Number(new URL(gateway.url).port)
  const big = await rawRequest(port, `GET /r HTTP/1.1\r\nHost: gw\r\nX-Big: ${'a'.repeat(8_000)}\r\n\r\n`)
  expect(big.status).toBe(431)
  const malformed = await rawRequest(port, 'GET /r HTTP/1.1\r\nHost: gw\r\nBad Header: x\r\n\r\n')
  expect(malformed.status).toBe(400)
  expect(await metricValue(gateway.adminUrl, 'bouncer_requests_total{route="(none)",status="431",decision="deny"}')).toBe(1)
  expect(await metricValue(gateway.adminUrl, 'bouncer_requests_total{route="(none)",status="400",decision="deny"}')).toBe(1)
})
