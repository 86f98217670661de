// Found by an adversarial probe (helper). README "Path rules": the route the gateway matches and
// authorizes is the one the server behind it would run. Express's default routing (strict: false),
// Spring before 6 and ASP.NET serve `/admin/` with the `/admin` handler; the gateway matched
// `/admin/` as another path (here the public catch-all), so the admin handler ran for a caller with
// no credential at all, and a deny statement was passed by. A real Express 5 is the upstream.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'

let app: Server
let gateway: TestGateway
let piiGateway: TestGateway
let idp: TestIdentityProvider
const adminRuns: string[] = []

beforeAll(async () => {
  const api = express()
  api.get('/admin', (req, res) => {
    adminRuns.push(req.originalUrl)
    res.json({ secret: 'admin-only' })
  })
  api.get('/sales/customers', (req, res) => {
    adminRuns.push(req.originalUrl)
    res.json({ emails: ['alice@example.com'] })
  })
  api.get('/{*rest}', (_req, res) => res.json({ public: true }))
  app = api.listen(0, '127.0.0.1')
  await once(app, 'listening')
  idp = await startIdentityProvider()
  gateway = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], algorithms: ['ES256', 'RS256'] }],
    roles: [{ name: 'admins', assumed_by: [{ issuer: 'corp', subject: 'admin-*' }], policies: ['admin'] }],
    policies: [{ name: 'admin', statements: [{ sid: 'Admin', effect: 'allow', actions: ['GET'], routes: ['admin'] }] }],
    upstreams: [{ name: 'api', url: `http://127.0.0.1:${(app.address() as AddressInfo).port}` }],
    routes: [
      { id: 'admin', methods: ['GET'], path: '/admin', upstream: 'api' },
      { id: 'site', methods: ['GET'], path: '/*', upstream: 'api', public: true },
    ],
  })
  // SPEC's own example: sales.* allowed, sales.customers denied (NoCustomerPII).
  piiGateway = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], algorithms: ['ES256', 'RS256'] }],
    roles: [{ name: 'analyst', assumed_by: [{ issuer: 'corp' }], policies: ['read-sales'] }],
    policies: [{ name: 'read-sales', statements: [
      { sid: 'AllowSalesReads', effect: 'allow', actions: ['GET', 'HEAD'], routes: ['sales.*'] },
      { sid: 'NoCustomerPII', effect: 'deny', actions: ['*'], routes: ['sales.customers'] },
    ] }],
    upstreams: [{ name: 'api', url: `http://127.0.0.1:${(app.address() as AddressInfo).port}` }],
    routes: [
      { id: 'sales.customers', methods: ['GET'], path: '/sales/customers', upstream: 'api' },
      { id: 'sales.any', methods: ['GET'], path: '/sales/*', upstream: 'api' },
    ],
  })
})

afterAll(async () => {
  await piiGateway?.close()
  await gateway?.close()
  app?.close()
  await idp?.stop()
})

describe('a trailing slash', () => {
  it('control: /admin without a credential is 401 and the admin handler does not run', async () => {
    adminRuns.length = 0
    const res = await fetch(`${gateway.url}/admin`)
    expect(res.status).toBe(401)
    expect(adminRuns).toEqual([])
  })

  it('/admin/ without a credential does not run the handler Express serves /admin with', async () => {
    adminRuns.length = 0
    const res = await fetch(`${gateway.url}/admin/`)
    const body = await res.text()
    expect(adminRuns).toEqual([])
    expect(body).not.toContain('admin-only')
    expect(res.status).toBeGreaterThanOrEqual(400)
  })
})

describe('a trailing slash past a deny statement', () => {
  it('control: /sales/customers is 403 policy_denied (NoCustomerPII)', async () => {
    adminRuns.length = 0
    const token = await idp.mint({ sub: 'svc-analyst' })
    const res = await fetch(`${piiGateway.url}/sales/customers`, { headers: { authorization: `Bearer ${token}` } })
    expect(res.status).toBe(403)
    expect(adminRuns).toEqual([])
  })

  it('/sales/customers/ is denied too: Express serves it with the /sales/customers handler', async () => {
    adminRuns.length = 0
    const token = await idp.mint({ sub: 'svc-analyst' })
    const res = await fetch(`${piiGateway.url}/sales/customers/`, { headers: { authorization: `Bearer ${token}` } })
    const body = await res.text()
    expect(body).not.toContain('alice@example.com')
    expect(adminRuns).toEqual([])
    expect(res.status).toBe(403)
  })
})
