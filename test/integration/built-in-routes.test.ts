// The gateway's own endpoints are routes the router matches, with a built-in backend, ahead of the
// config's routes: /.well-known/jwks.json is answered by the gateway whatever the config's routes
// take, any method but GET/HEAD gets 405, and its audit record and metrics name the route
// builtin/jwks (an id no config route can have). With durability: sync its record is committed
// before the answer, like every other response's.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-built-ins-'))
  upstream = await startUpstream()
  gw = await startTestGateway({
    upstreams: [{ name: 'api', url: upstream.url }],
    // A catch-all for every method, TRACE included: it still never takes the gateway's own path.
    routes: [{ id: 'everything', path: '/*', methods: ['*', 'TRACE'], upstream: 'api', public: true }],
    // A long flush interval: a record is in SQLite at once only when it was committed before the answer.
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), durability: 'sync', flush_interval: '10s' },
  })
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

const audited = async (requestId: string) => (await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 50 })).find((r) => r.request_id === requestId)

describe('built-in routes', () => {
  it('the JWKS is answered by the gateway, not by a catch-all route, and its record is committed before the answer', async () => {
    const res = await request(`${gw.url}/.well-known/jwks.json`, { headers: { 'x-request-id': 'jwks-get' } })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('application/jwk-set+json')
    expect(await res.body.json()).toEqual({ keys: [] })
    expect(upstream.received).toEqual([])
    expect(await audited('jwks-get')).toMatchObject({ route: 'builtin/jwks', status: 200, decision: 'allow', upstream: null, method: 'GET' })
  })

  it('any other method gets 405 with Allow, and the catch-all does not take it either', async () => {
    for (const method of ['POST', 'DELETE', 'TRACE'] as const) {
      const res = await request(`${gw.url}/.well-known/jwks.json`, { method, headers: { 'x-request-id': `jwks-${method}` } })
      expect(res.statusCode).toBe(405)
      expect(res.headers.allow).toBe('GET, HEAD')
      expect(((await res.body.json()) as { code: string }).code).toBe('method_not_allowed')
      expect(await audited(`jwks-${method}`)).toMatchObject({ route: 'builtin/jwks', status: 405, code: 'method_not_allowed' })
    }
    expect(upstream.received).toEqual([])
    // Everything else still reaches the catch-all.
    await (await request(`${gw.url}/.well-known/other`)).body.dump()
    expect(upstream.received.map((r) => r.url)).toEqual(['/.well-known/other'])
  })

  it('is counted under its route id in the metrics', async () => {
    await waitFor(async () => (await (await request(`${gw.adminUrl}/metrics`)).body.text()).includes('bouncer_requests_total{route="builtin/jwks",status="200",decision="allow"}'), 'the built-in route in the metrics')
  })
})
