// Found by an adversarial probe: forward-auth audits each decision as the original request
// (docs/forward-auth.md), but a described target the path rules refuse (a `..`, an encoded slash,
// a non-ASCII byte, an absolute form for another host) was recorded under the check's own path,
// /.bouncer/auth. nginx turns that 400 into a 500 and points the operator at the audit log, where
// no record named the request the client made.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let api: TestUpstream
let gw: TestGateway
let db: string

beforeAll(async () => {
  api = await startUpstream()
  gw = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return {
      server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
      audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
      upstreams: [{ name: 'api', url: api.url }],
      routes: [{ id: 'orders', path: '/orders/*', upstream: 'api', public: true }],
    }
  })
})

afterAll(async () => {
  await gw?.close()
  await api?.close()
})

describe('a forward-auth description the path rules refuse', () => {
  it('is recorded under the described path (without its query), not the check\'s', async () => {
    const cases: Array<[string, Record<string, string>, string]> = [
      ['dots', { 'x-original-method': 'GET', 'x-original-uri': '/orders/%2e%2e/admin?access_token=s3cret' }, '/orders/%2e%2e/admin'],
      ['slash', { 'x-forwarded-method': 'DELETE', 'x-forwarded-uri': '/orders/a%2Fb', 'x-forwarded-host': 'api.example.com' }, '/orders/a%2Fb'],
      ['absolute', { 'x-original-method': 'GET', 'x-original-uri': 'http://user:pw@evil.example/orders/7?q=1' }, '/orders/7'],
    ]
    for (const [id, headers, path] of cases) {
      const requestId = `fa-refused-${id}`
      const res = await request(`${gw.url}/.bouncer/auth`, { headers: { ...headers, 'x-request-id': requestId } })
      expect(((await res.body.json()) as { code: string }).code).toBe('bad_path')
      expect(res.statusCode).toBe(400)
      const record = await waitForAuditRecord(db, requestId)
      expect(record, id).toMatchObject({ method: headers['x-original-method'] ?? headers['x-forwarded-method'], path, status: 400, code: 'bad_path', decision: 'deny' })
      expect(JSON.stringify(record)).not.toContain('s3cret')
      expect(JSON.stringify(record)).not.toContain('pw@')
    }
    expect(api.received).toEqual([])
  })
})
