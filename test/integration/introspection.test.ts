// Opaque access tokens (issue 17 point 3) against oidc-provider's own RFC 7662 introspection
// endpoint: real opaque tokens from the client-credentials grant, revoked at the provider's RFC 7009
// endpoint. Answers are cached within `introspection.cache` and never past the token's exp; a burst
// with one token costs the provider one introspection.
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditRecord } from '../../src/audit/record.ts'
import { searchAudit } from '../../src/audit/search.ts'
import { closedPort } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, DEFAULT_CLIENTS, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const OPAQUE = 'api://legacy-reports'
const GATEWAY_CLIENT = { clientId: 'bouncer-gateway', secret: 'bouncer-gateway-secret-0123456789' }
const SECRET_ENV = { INTROSPECTION_TEST_SECRET_INTROSPECTION_SECRET: GATEWAY_CLIENT.secret }

let dir: string
let idp: TestIdentityProvider
let upstream: TestUpstream
const gateways: TestGateway[] = []

function config(issuer: TestIdentityProvider, introspection: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    secrets: { store: { type: 'env', prefix: 'INTROSPECTION_TEST_SECRET_' } },
    issuers: [{
      name: 'legacy',
      issuer: issuer.issuer,
      audiences: [OPAQUE, AUDIENCE],
      introspection: { url: `${issuer.issuer}/token/introspection`, client_id: GATEWAY_CLIENT.clientId, client_secret: '${secret:introspection-secret}', ...introspection },
      ...extra,
    }],
    roles: [{ name: 'reports', assumed_by: [{ issuer: 'legacy', subject: 'looker-*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [{ sid: 'Read', effect: 'allow', actions: ['GET'], routes: ['*'] }] }],
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'reports', path: '/reports/*', upstream: 'api' }],
  }
}

async function gatewayFor(cfg: Record<string, unknown>): Promise<TestGateway> {
  const gateway = await startTestGateway(cfg, { env: SECRET_ENV })
  gateways.push(gateway)
  return gateway
}

async function call(gateway: TestGateway, token: string, requestId?: string) {
  const res = await request(`${gateway.url}/reports/daily`, { headers: { authorization: `Bearer ${token}`, ...(requestId ? { 'x-request-id': requestId } : {}) } })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-introspection-'))
  idp = await startIdentityProvider({ opaqueAudience: OPAQUE, clients: [...DEFAULT_CLIENTS, GATEWAY_CLIENT] })
  upstream = await startUpstream()
})

afterAll(async () => {
  for (const gateway of gateways) await gateway.close()
  await upstream?.close()
  await idp?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('an issuer with introspection', () => {
  let gateway: TestGateway
  let auditDb: string

  beforeAll(async () => {
    auditDb = join(dir, 'audit.db')
    // jwks_uri too: this provider's JWTs are verified locally, its opaque tokens introspected.
    gateway = await gatewayFor({
      ...config(idp, { cache: '60s' }, { jwks_uri: `${idp.issuer}/jwks` }),
      audit: { sinks: [{ type: 'sqlite', path: auditDb }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    })
    await waitFor(() => gateway.state.runtime.issuerKeys.get('legacy')?.state === 'ready', 'the issuer keys')
  })

  it('takes an opaque token the provider says is active, asks once, and records a bearer credential', async () => {
    const token = await idp.token('looker-reports', { resource: OPAQUE })
    expect(token.split('.')).toHaveLength(1) // opaque: not a JWT
    const before = idp.introspections
    const first = await call(gateway, token, 'introspected-1')
    expect(first.status).toBe(200)
    expect((await call(gateway, token)).status).toBe(200)
    expect(idp.introspections - before).toBe(1) // the second answer came from the cache
    let record: AuditRecord | undefined
    await waitFor(async () => (record = (await searchAudit({ type: 'sqlite', path: auditDb }, { limit: 50 }).catch(() => [])).find((r) => r.request_id === 'introspected-1')) !== undefined, 'the audit record')
    expect(record).toMatchObject({ credential: 'bearer', issuer: idp.issuer, subject: 'looker-reports', client_id: 'looker-reports', roles: ['reports'] })
  })

  it('asks once for a burst of requests with one token', async () => {
    const token = await idp.token('looker-reports', { resource: OPAQUE })
    const before = idp.introspections
    const statuses = await Promise.all(Array.from({ length: 40 }, async () => (await call(gateway, token)).status))
    expect(statuses.every((s) => s === 200)).toBe(true)
    expect(idp.introspections - before).toBe(1)
  })

  it('still verifies the same provider\'s JWTs locally, without asking', async () => {
    const jwt = await idp.token('looker-reports')
    const before = idp.introspections
    expect((await call(gateway, jwt)).status).toBe(200)
    expect(idp.introspections).toBe(before)
  })

  it('refuses a token the provider does not know: 401 token_revoked', async () => {
    const res = await call(gateway, 'not-a-token-this-provider-issued')
    expect(res.status).toBe(401)
    expect(res.body).toMatchObject({ code: 'token_revoked', detail: expect.stringContaining('Issuer "legacy" says the token is not active') })
    expect(res.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token"/)
  })
})

describe('refusals kept for introspection.negative_cache', () => {
  it('a client retrying a dead token costs the provider one question per period, not one per request', async () => {
    const gateway = await gatewayFor(config(idp, { cache: '60s', negative_cache: '60s' })) // the default, 5s, is callers.test.ts's
    const before = idp.introspections
    for (let i = 0; i < 20; i++) expect((await call(gateway, 'a-token-revoked-long-ago')).body).toMatchObject({ code: 'token_revoked' })
    expect(idp.introspections - before).toBe(1)
  })

  it('is asked again once the period is over, and every time with 0s', async () => {
    const short = await gatewayFor(config(idp, { negative_cache: '300ms' }))
    const none = await gatewayFor(config(idp, { negative_cache: '0s' }))
    const before = idp.introspections
    expect((await call(short, 'unknown-to-the-provider')).status).toBe(401)
    expect((await call(short, 'unknown-to-the-provider')).status).toBe(401)
    expect(idp.introspections - before).toBe(1) // the second, at once, from the cache
    await waitFor(async () => (await call(short, 'unknown-to-the-provider')).status === 401 && idp.introspections - before === 2, 'a second question after 300 ms')
    const again = idp.introspections
    for (let i = 0; i < 3; i++) expect((await call(none, 'unknown-to-the-provider')).status).toBe(401)
    expect(idp.introspections - again).toBe(3)
  })

  it('unknown tokens by the dozen never push an active answer out of the cache', async () => {
    const gateway = await gatewayFor({ ...config(idp, { cache: '60s' }), server: { token_cache_entries: 2 } })
    const token = await idp.token('looker-reports', { resource: OPAQUE })
    expect((await call(gateway, token)).status).toBe(200)
    for (let i = 0; i < 12; i++) expect((await call(gateway, `made-up-token-${i}`)).status).toBe(401)
    const before = idp.introspections
    expect((await call(gateway, token)).status).toBe(200)
    expect(idp.introspections).toBe(before) // still cached: the refusals have a cache of their own
  })
})

describe('revocation at the provider', () => {
  it('is seen once the cached answer is older than introspection.cache: 401 token_revoked; a longer cache still serves it', async () => {
    const short = await gatewayFor(config(idp, { cache: '1s' }))
    const long = await gatewayFor(config(idp, { cache: '60s' }))
    const token = await idp.token('looker-reports', { resource: OPAQUE })
    expect((await call(short, token)).status).toBe(200)
    expect((await call(long, token)).status).toBe(200)
    const askedBy = Date.now() // both answers were asked for before this

    await idp.revoke('looker-reports', token)
    const before = idp.introspections
    expect((await call(long, token)).status).toBe(200) // within its 60 s: from the cache
    expect(idp.introspections).toBe(before)
    await waitFor(async () => (await call(short, token)).status === 401, 'the revocation')
    console.log(`revocation seen after ${Date.now() - askedBy} ms (cache 1000 ms)`)
    await new Promise((r) => setTimeout(r, Math.max(0, askedBy + 1_000 - Date.now())))
    expect((await call(short, token)).body).toMatchObject({ code: 'token_revoked' })
  })

  it('an answer is never kept past the token\'s exp, whatever the cache', async () => {
    const shortLived = await startIdentityProvider({ opaqueAudience: OPAQUE, clients: [...DEFAULT_CLIENTS, GATEWAY_CLIENT], tokenTtlSeconds: 2 })
    try {
      const gateway = await gatewayFor(config(shortLived, { cache: '60s' }))
      const token = await shortLived.token('looker-reports', { resource: OPAQUE })
      expect((await call(gateway, token)).status).toBe(200)
      const asked = shortLived.introspections
      await waitFor(async () => (await call(gateway, token)).status === 401, 'the token to expire')
      expect(shortLived.introspections).toBeGreaterThan(asked) // the cache let go at exp, and the provider was asked again
      expect((await call(gateway, token)).body).toMatchObject({ code: 'token_revoked' })
    } finally {
      await shortLived.stop()
    }
  })
})

describe('when introspection cannot answer', () => {
  it('an unreachable endpoint is 503 identity_provider_unavailable', async () => {
    const gateway = await gatewayFor(config(idp, { url: `http://127.0.0.1:${await closedPort()}/introspect` }))
    const res = await call(gateway, 'some-opaque-token')
    expect(res.status).toBe(503)
    expect(res.body).toMatchObject({ code: 'identity_provider_unavailable', detail: expect.stringContaining('introspection endpoint cannot be reached') })
  })

  it('an answer that breaks off, stalls after its head, or trickles: 503 within the timeout, never a 500 or a hang', async () => {
    // An introspection endpoint of the test's own: it answers its head, then what each case says.
    let behaviour: (res: ServerResponse) => void = () => {}
    const endpoint = createServer((req, res) => {
      req.resume()
      req.on('end', () => behaviour(res))
    })
    endpoint.listen(0, '127.0.0.1')
    await once(endpoint, 'listening')
    try {
      const gateway = await gatewayFor(config(idp, { url: `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/introspect`, timeout: '1s', cache: '0s' }))
      const cases: Array<[string, (res: ServerResponse) => void]> = [
        ['silent after part of its body', (res) => {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.write('{"active": tr')
        }],
        ['reset mid-body', (res) => {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.write('{"active": tr', () => res.socket?.destroy())
        }],
        ['a byte every 300 ms', (res) => {
          res.writeHead(200, { 'content-type': 'application/json' })
          const trickle = setInterval(() => res.write(' '), 300)
          res.on('close', () => clearInterval(trickle))
        }],
      ]
      for (const [name, answer] of cases) {
        behaviour = answer
        const started = performance.now()
        const res = await call(gateway, `opaque-token-${name.replaceAll(' ', '-')}`)
        expect({ name, status: res.status, code: res.body.code }).toEqual({ name, status: 503, code: 'identity_provider_unavailable' })
        // Before: a 500 for the first two, and the trickle held the request for as long as it went on.
        expect(performance.now() - started, name).toBeLessThan(5_000)
      }
    } finally {
      endpoint.closeAllConnections()
      endpoint.close()
    }
  }, 30_000)

  it('a client secret the provider refuses is 503 too, naming the setting, not the caller\'s fault', async () => {
    const gateway = await gatewayFor(config(idp, { client_secret: 'not-the-secret' }))
    const token = await idp.token('looker-reports', { resource: OPAQUE })
    const res = await call(gateway, token)
    expect(res.status).toBe(503)
    expect(res.body).toMatchObject({ code: 'identity_provider_unavailable', detail: expect.stringMatching(/answered HTTP 401: check introspection.client_id and client_secret/) })
  })

  it('a new client secret in the secrets store is used without a restart', async () => {
    const secretsDir = join(dir, 'secrets')
    await mkdir(secretsDir, { recursive: true })
    await writeFile(join(secretsDir, 'introspection-secret'), 'an-old-secret')
    const gateway = await gatewayFor({ ...config(idp, {}), secrets: { store: { type: 'file', dir: secretsDir }, refresh_interval: '100ms' } })
    const token = await idp.token('looker-reports', { resource: OPAQUE })
    expect((await call(gateway, token)).status).toBe(503)
    await writeFile(join(secretsDir, 'introspection-secret'), GATEWAY_CLIENT.secret)
    await waitFor(async () => (await call(gateway, token)).status === 200, 'the new secret in use')
  })

  it('an issuer that only introspects loads no keys: /readyz does not wait for them', async () => {
    const gateway = await gatewayFor(config(idp, {}))
    expect(gateway.state.runtime.issuerKeys.size).toBe(0)
    const res = await request(`${gateway.adminUrl}/readyz`)
    expect(res.statusCode).toBe(200)
    expect(JSON.stringify(await res.body.json())).not.toContain('issuer:legacy')
    expect((await call(gateway, await idp.token('looker-reports', { resource: OPAQUE }))).status).toBe(200)
  })
})
