// A server-sent event stream passed through from an upstream outlives its request, the only one
// authenticated and authorized, as a WebSocket tunnel outlives its handshake: it went on after the
// caller's token expired, after its API key was revoked, after a reload that made the policies deny
// the caller, and it held a
// shutdown's drain to server.shutdown_timeout, then was cut. It now joins the open tunnels' registry
// and ends (cleanly: the response's end, the upstream's request aborted) for the same reasons; the
// record's detail says why.
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { newApiKey } from '../../src/identity/index.ts'
import { credentialExpiredNote } from '../../src/upstream/index.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const TOLERANCE = 2
const AUDIENCE = 'api://bouncer'
const ADMIN_TOKEN = 'event-stream-lifecycle-admin-token-0123'

let upstream: TestUpstream
let gw: TestGateway
let idp: TestIdentityProvider
let db: string
let dir: string

/** `denied`: the policy no longer lets the caller read the stream. */
function config(denied = false): Record<string, unknown> {
  return {
    admin: { token: ADMIN_TOKEN },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], clock_tolerance: `${TOLERANCE}s` }],
    api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
    roles: [
      { name: 'reader', assumed_by: [{ issuer: 'corp', subject: 'feed-reader' }], policies: ['feed'] },
      { name: 'bots', assumed_by: [{ issuer: 'api-keys', subject: 'bot-*' }], policies: ['feed'] },
    ],
    policies: [{ name: 'feed', statements: [{ sid: 'Feed', effect: denied ? 'deny' : 'allow', actions: ['GET'], routes: ['events'] }] }],
    server: { shutdown_timeout: '20s' },
    upstreams: [{ name: 'feed', url: upstream.url }],
    routes: [{ id: 'events', path: '/events', methods: ['GET'], upstream: 'feed', accept: ['bearer', 'api_key'] }],
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  }
}

beforeAll(async () => {
  idp = await startIdentityProvider()
  // An event every 100 ms, for as long as the client stays.
  upstream = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    const timer = setInterval(() => res.write('data: tick\n\n'), 100)
    req.socket.once('close', () => clearInterval(timer))
  })
  gw = await startTestGateway((gatewayDir) => {
    dir = gatewayDir
    db = join(dir, 'audit.db')
    return config()
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

/** Opens the stream (request id `id`): resolves once its first event came, with when it ends. */
async function open(token: string, id: string): Promise<{ ended: Promise<{ at: number; ticks: number }> }> {
  const response = await fetch(`${gw.url}/events`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': id } })
  expect(response.status).toBe(200)
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  let ticks = 0
  const first = await reader.read()
  if (!first.done) ticks++
  const ended = (async () => {
    for (;;) {
      const chunk = await reader.read()
      if (chunk.done) return { at: Date.now(), ticks }
      ticks++
    }
  })()
  return { ended }
}

const settlesWithin = (promise: Promise<unknown>, ms: number) => Promise.race([promise.then(() => true, () => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))])

it('ends when verification stops accepting the token: exp plus the issuer\'s clock_tolerance', async () => {
  const exp = Math.floor(Date.now() / 1000) + 1
  const { ended } = await open(await idp.mint({ sub: 'feed-reader', aud: AUDIENCE, exp }), 'sse-expiry')
  // Before: it never ended.
  expect(await settlesWithin(ended, (exp + TOLERANCE + 5) * 1000 - Date.now())).toBe(true)
  expect((await ended).at).toBeGreaterThanOrEqual((exp + TOLERANCE) * 1000 - 50)
  const record = await waitForAuditRecord(db, 'sse-expiry')
  expect({ status: record.status, decision: record.decision, detail: record.detail }).toEqual({ status: 200, decision: 'allow', detail: credentialExpiredNote(exp, TOLERANCE, 'the event stream') })
}, 30_000)

it('ends when its API key is revoked', async () => {
  const created = newApiKey()
  await gw.state.runtime.apiKeys!.store.insert({
    id: created.id, principal: 'bot-feed', description: null, hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null,
  })
  const { ended } = await open(created.key, 'sse-revoked')
  const answer = await request(`${gw.adminUrl}/api/keys/${created.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  await answer.body.dump()
  expect(answer.statusCode).toBe(200)
  // Before: it went on.
  expect(await settlesWithin(ended, 5_000)).toBe(true)
  const record = await waitForAuditRecord(db, 'sse-revoked')
  expect(record.detail).toMatch(/^The caller's API key .* was revoked at .*: the gateway closed the event stream\.$/)
}, 30_000)

it('ends when a reload makes the policies deny the caller', async () => {
  const { ended } = await open(await idp.mint({ sub: 'feed-reader', aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 }), 'sse-reload')
  try {
    await gw.writeConfig(config(true))
    expect((await gw.reload()).ok).toBe(true)
    // Before: it went on.
    expect(await settlesWithin(ended, 5_000)).toBe(true)
    const record = await waitForAuditRecord(db, 'sse-reload')
    expect(record.detail).toMatch(/^After a config reload, the caller is no longer allowed \(.*\): the gateway closed the event stream\.$/)
  } finally {
    await gw.writeConfig(config())
    await gw.reload()
  }
}, 30_000)

it('ends at the drain\'s start, and the drain does not wait for it', async () => {
  const { ended } = await open(await idp.mint({ sub: 'feed-reader', aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 }), 'sse-drain')
  const started = performance.now()
  await gw.shutdown()
  // Before: held to server.shutdown_timeout (20 s), then cut.
  expect(performance.now() - started).toBeLessThan(5_000)
  expect(await settlesWithin(ended, 1_000)).toBe(true)
  const record = await waitForAuditRecord(db, 'sse-drain')
  expect({ status: record.status, detail: record.detail }).toEqual({ status: 200, detail: 'The gateway was shutting down: it ended the event stream for the client to reconnect to another instance.' })
}, 30_000)
