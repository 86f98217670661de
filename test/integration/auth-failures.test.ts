// auth_failures as a client sees it: an address whose credentials keep failing verification gets 429
// before its credential is read (a valid one included), other addresses and public routes go on,
// genuine-but-stale credentials and missing ones are not counted, the refusal is in the audit record
// and /metrics, and with a Redis store two gateways count one budget.
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, signingKey, startIdentityProvider, type SigningKey, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startRedis, uniquePrefix } from '../helpers/redis.ts'
import { waitFor } from '../helpers/wait.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { auditRows, MCP_RESOURCE, startMcpTestGateway } from '../helpers/mcp.ts'

let upstream: TestUpstream
let idp: TestIdentityProvider
let valid: string
let forged: string
let expired: string
const closeLater = closeAfterEach()
const ADMIN = 'auth-failures-admin-token-0123456789'
const agents = new Map<string, Agent>()

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => void res.end('ok'))
  idp = await startIdentityProvider()
  valid = await idp.token('looker-reports')
  // The provider's key id with other key material: a signature that does not verify.
  const genuine = idp.keys.find((k) => k.alg === 'ES256') as SigningKey
  const impostor = await signingKey(genuine.kid, 'ES256')
  forged = await idp.mint({ sub: 'looker-reports', aud: AUDIENCE }, { key: impostor })
  expired = await idp.mint({ sub: 'looker-reports', aud: AUDIENCE, iat: 1_000_000, exp: 1_000_060 })
})
afterAll(async () => {
  await Promise.all([...agents.values()].map((a) => a.close()))
  await upstream.close()
  await idp.stop()
})

function gatewayConfig(dir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'open', path: '/open/*', upstream: 'api', public: true },
      { id: 'api', path: '/*', upstream: 'api' },
    ],
    auth_failures: { rate: '1/m', burst: 3 },
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    ...extra,
  }
}

async function gateway(extra: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startTestGateway((dir) => gatewayConfig(dir, extra))
  closeLater(() => gw.close())
  return gw
}

/** A request from one loopback address (127.0.0.0/8 is all this host's): each address is a client of its own. */
async function call(gw: TestGateway, from: string, path: string, token?: string) {
  let agent = agents.get(from)
  if (agent === undefined) agents.set(from, (agent = new Agent({ localAddress: from })))
  const res = await request(`${gw.url}${path}`, { dispatcher: agent, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

async function statuses(gw: TestGateway, from: string, count: number, token?: string): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < count; i++) out.push((await call(gw, from, '/x', token)).status)
  return out
}

describe('auth_failures', () => {
  it('holds back an address whose tokens keep failing, before reading its credential, and no other address or public route', async () => {
    const gw = await gateway()
    // The burst of 3 is spent, the 4th failure finds the bucket empty: still a 401 (it was checked), and the address is held.
    const failed = await call(gw, '127.0.0.3', '/x', forged)
    expect(failed.status).toBe(401)
    expect(failed.body.code).toBe('signature_invalid')
    expect(await statuses(gw, '127.0.0.3', 3, forged)).toEqual([401, 401, 401])
    // Held: a valid token from there is not even read.
    const held = await call(gw, '127.0.0.3', '/x', valid)
    expect(held.status).toBe(429)
    expect(held.body.code).toBe('rate_limited')
    expect(held.body.detail).toMatch(/could not be verified \(auth_failures allows 1 failed authentication per minute with a burst of 3\)/)
    const retryAfter = Number(held.headers['retry-after'])
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(60)
    // Said once in the log (the operator's fail2ban line), not at every refusal.
    const said = gw.logs.filter((line) => line.includes('address held back'))
    expect(said).toHaveLength(1)
    expect(JSON.parse(said[0] as string)).toMatchObject({ level: 'info', address: '127.0.0.3', addresses: 1, msg: 'address held back: its credentials keep failing verification (auth_failures allows 1 failed authentication per minute with a burst of 3)' })
    // A forged one neither: the 429, not another 401.
    expect((await call(gw, '127.0.0.3', '/x', forged)).status).toBe(429)
    // Other addresses, and routes that need no identity, are served.
    expect((await call(gw, '127.0.0.4', '/x', valid)).status).toBe(200)
    expect((await call(gw, '127.0.0.3', '/open/x')).status).toBe(200)

    const record = await waitForAuditRecord(join(gw.dir, 'audit.db'), held.headers['x-request-id'] as string)
    expect(record).toMatchObject({ status: 429, decision: 'deny', code: 'rate_limited', limit: 'auth_failures', source_ip: '127.0.0.3', subject: null })
    // The console explains it as what it was, not as a request with no token that would be allowed now.
    const trace = await (await request(`${gw.adminUrl}/api/audit/trace?id=${record.id}&time=${encodeURIComponent(record.time)}`, { headers: { authorization: `Bearer ${ADMIN}` } })).body.json() as { explanation: { decision: { status: number; reason: string } }; explained_under: { agrees: boolean } }
    expect(trace.explanation.decision.status).toBe(429)
    expect(trace.explanation.decision.reason).toMatch(/^The address 127\.0\.0\.3 was held back by auth_failures: too many of its credentials had failed verification/)
    expect(trace.explained_under.agrees).toBe(true)
    const denials = await (await request(`${gw.adminUrl}/api/denials?since=1h`, { headers: { authorization: `Bearer ${ADMIN}` } })).body.json() as Array<{ code: string; explanation: { reason: string }; explained_under: { agrees: boolean } }>
    const heldGroup = denials.find((d) => d.code === 'rate_limited')
    expect(heldGroup?.explanation.reason).toMatch(/held back by auth_failures/)
    expect(heldGroup?.explained_under.agrees).toBe(true)
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text()
    expect(metrics).toMatch(/bouncer_rate_limited_total\{limit="auth_failures",code="rate_limited"\} 2/)
    // The console's limits: beside the configured ones, with the routes it guards and its refusals.
    await waitFor(async () => {
      const catalog = await (await request(`${gw.adminUrl}/api/catalog`, { headers: { authorization: `Bearer ${ADMIN}` } })).body.json() as { limits: Array<Record<string, unknown>> }
      return catalog.limits.some((l) => l.name === 'auth_failures' && l.refused_1h === 2)
    }, 'auth_failures in the catalog with its 2 refusals')
    const catalog = await (await request(`${gw.adminUrl}/api/catalog`, { headers: { authorization: `Bearer ${ADMIN}` } })).body.json() as { limits: unknown[] }
    expect(catalog.limits).toEqual([{ name: 'auth_failures', key: 'ip', rate: '1/m', burst: 3, quota: null, routes: ['api'], refused_1h: 2, last_refused: expect.any(String) }])
  })

  it('does not count a genuine credential that no longer counts, nor a missing one', async () => {
    const gw = await gateway()
    const stale = await statuses(gw, '127.0.0.5', 6, expired)
    expect(stale).toEqual([401, 401, 401, 401, 401, 401])
    expect((await call(gw, '127.0.0.5', '/x', expired)).body.code).toBe('token_expired')
    expect(await statuses(gw, '127.0.0.6', 6)).toEqual([401, 401, 401, 401, 401, 401])
    expect((await call(gw, '127.0.0.5', '/x', valid)).status).toBe(200)
    expect((await call(gw, '127.0.0.6', '/x', valid)).status).toBe(200)
  })

  it('counts every gateway sharing a Redis store in one budget', async () => {
    const store = { limits_store: { type: 'redis', url: 'redis://127.0.0.1:6379', prefix: uniquePrefix('auth-failures') } }
    const [a, b] = [await gateway(store), await gateway(store)]
    // Two failures at each: the fourth, at b, finds the shared bucket empty.
    expect(await statuses(a, '127.0.0.7', 2, forged)).toEqual([401, 401])
    expect(await statuses(b, '127.0.0.7', 2, forged)).toEqual([401, 401])
    expect((await call(b, '127.0.0.7', '/x', valid)).status).toBe(429)
    // a learns at its next failure that the budget is spent.
    expect((await call(a, '127.0.0.7', '/x', forged)).status).toBe(401)
    expect((await call(a, '127.0.0.7', '/x', valid)).status).toBe(429)
  })

  it('with the Redis store away, counts nothing and holds nobody back, and says so in the log', async () => {
    const redis = await startRedis()
    closeLater(() => redis.stop())
    const gw = await gateway({ limits_store: { type: 'redis', url: redis.url, timeout: '200ms' } })
    await redis.stop()
    expect(await statuses(gw, '127.0.0.8', 6, forged)).toEqual([401, 401, 401, 401, 401, 401])
    expect((await call(gw, '127.0.0.8', '/x', valid)).status).toBe(200)
    await waitFor(() => gw.logs.some((line) => line.includes('failed authentications are not counted (auth_failures)')), 'the store failure logged')
    expect(gw.logs.filter((line) => line.includes('failed authentications are not counted')).length).toBe(1)
  })

  it('counts unknown API keys, as X-API-Key or as a bearer', async () => {
    const gw = await startTestGateway((dir) => gatewayConfig(dir, {
      api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
      routes: [{ id: 'keys', path: '/*', upstream: 'api', accept: ['api_key', 'bearer'] }],
    }))
    closeLater(() => gw.close())
    const unknown = `bk_${'0'.repeat(16)}_${'a'.repeat(64)}`
    const send = async (headers: Record<string, string>) => {
      const res = await request(`${gw.url}/x`, { headers })
      const body = await res.body.json() as { code: string }
      return `${res.statusCode} ${body.code}`
    }
    expect(await send({ 'x-api-key': unknown })).toBe('401 api_key_invalid')
    expect(await send({ authorization: `Bearer ${unknown}` })).toBe('401 api_key_invalid')
    expect(await send({ 'x-api-key': 'not-a-key' })).toBe('401 api_key_invalid')
    expect(await send({ 'x-api-key': unknown })).toBe('401 api_key_invalid') // the burst of 3 spent: held from here
    expect(await send({ authorization: `Bearer ${valid}` })).toBe('429 rate_limited')
  })

  it('counts wrong admin tokens at the admin API, in the same budget as the gateway\'s', async () => {
    const gw = await gateway()
    const admin = async (from: string, token?: string) => {
      let agent = agents.get(from)
      if (agent === undefined) agents.set(from, (agent = new Agent({ localAddress: from })))
      const res = await request(`${gw.adminUrl}/api/routes`, { dispatcher: agent, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
      const body = await res.body.text()
      return { status: res.statusCode, headers: res.headers, code: body.startsWith('{') ? (JSON.parse(body) as { code?: string }).code : undefined }
    }
    const guesses: Array<string | undefined> = []
    for (let i = 0; i < 4; i++) guesses.push((await admin('127.0.0.11', `guess-${i}`)).code)
    expect(guesses).toEqual(['unauthorized', 'unauthorized', 'unauthorized', 'unauthorized'])
    // Held: the admin token itself is not compared from there, as a valid bearer is not read at the gateway.
    const held = await admin('127.0.0.11', ADMIN)
    expect(held).toMatchObject({ status: 429, code: 'rate_limited' })
    expect(Number(held.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    // The address is held at the gateway too: one budget for every credential it guesses.
    expect((await call(gw, '127.0.0.11', '/x', valid)).status).toBe(429)
    // Another address administers as before.
    expect((await admin('127.0.0.12', ADMIN)).status).toBe(200)
    // No token is no guess: counted neither here nor there.
    const missing: number[] = []
    for (let i = 0; i < 5; i++) missing.push((await admin('127.0.0.13')).status)
    expect(missing).toEqual([401, 401, 401, 401, 401])
    expect((await admin('127.0.0.13', ADMIN)).status).toBe(200)
    // And a gateway spraying forged tokens is held at the admin API.
    expect(await statuses(gw, '127.0.0.14', 4, forged)).toEqual([401, 401, 401, 401])
    expect((await admin('127.0.0.14', ADMIN)).status).toBe(429)
  })

  it('holds back an agent whose tokens keep failing at the MCP endpoint', async () => {
    const setup = await startMcpTestGateway('auth-failures', (config) => ({ ...config, auth_failures: { rate: '1/m', burst: 2 } }))
    closeLater(() => setup.close())
    const { gateway: gw, idp: mcpIdp } = setup
    const key = mcpIdp.keys.find((k) => k.alg === 'ES256') as SigningKey
    const badAgent = await mcpIdp.mint({ sub: 'analytics-agent', aud: MCP_RESOURCE }, { key: await signingKey(key.kid, 'ES256') })
    const goodAgent = await mcpIdp.token('analytics-agent', { resource: MCP_RESOURCE })
    const initialize = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '1' } } })
    const post = async (token: string) => {
      const res = await request(`${gw.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` }, body: initialize })
      await res.body.dump()
      return { status: res.statusCode, headers: res.headers }
    }
    expect((await post(goodAgent)).status).toBe(200)
    expect([(await post(badAgent)).status, (await post(badAgent)).status, (await post(badAgent)).status]).toEqual([401, 401, 401])
    const held = await post(goodAgent)
    expect(held.status).toBe(429)
    await waitFor(() => auditRows(join(setup.dir, 'audit.db'), `request_id = '${held.headers['x-request-id'] as string}'`).length === 1, 'the 429 recorded')
    expect(auditRows(join(setup.dir, 'audit.db'), `request_id = '${held.headers['x-request-id'] as string}'`)[0]).toMatchObject({ status: 429, code: 'rate_limited', limit: 'auth_failures' })
  })
})
