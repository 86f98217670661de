// A reload that changes an upstream's settings (its timeout, a header) makes its targets anew, and
// their counters with them: bouncer_upstream_target_requests_total and the others went back to 0
// with the same labels, which Prometheus reads as a counter reset (the tries between the last
// scrape and the reload lost to increase()), and a request still in flight on the replaced upstream
// was counted on an object no scrape read any more.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { publicCatchAll, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue } from '../helpers/wait.ts'

let upstream: TestUpstream
let gateway: TestGateway
const configWith = (timeout: string) => {
  const base = publicCatchAll(upstream.url) as { upstreams: Array<Record<string, unknown>>; routes: object[] }
  return { ...base, upstreams: [{ ...base.upstreams[0], timeout }] }
}

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await startTestGateway(configWith('30s'))
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

const get = async (path: string) => (await request(`${gateway.url}${path}`)).body.dump()

it('a reload that changes an upstream keeps its targets\' counters going on from where they were', async () => {
  const series = `bouncer_upstream_target_requests_total{upstream="api",target="${new URL(upstream.url).origin}"}`
  await get('/a')
  await get('/b')
  expect(await metricValue(gateway.adminUrl, series)).toBe(2)
  await gateway.writeConfig(configWith('20s'))
  expect(await gateway.reload()).toMatchObject({ ok: true })
  await get('/c')
  expect(await metricValue(gateway.adminUrl, series)).toBe(3)
})
