// A subscription streamed as JSON lines (NDJSON, a watch API) outlives its request as an event stream
// does: it went on after the caller's API key was revoked and after its token expired. It now joins
// the open tunnels' registry too, and is cut (not ended as if complete: a client reading lines must
// not take what came for the whole answer); the record's detail says why. An answer of another type
// (a chunked JSON document) is not held.
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

const AUDIENCE = 'api://bouncer'
const ADMIN_TOKEN = 'streamed-answer-lifecycle-admin-token-0123'

let upstream: TestUpstream
let gw: TestGateway
let idp: TestIdentityProvider
let db: string

beforeAll(async () => {
  idp = await startIdentityProvider()
  // A line every 100 ms, for as long as the client stays, typed as the path says.
  upstream = await startUpstream((req, res) => {
    const type = req.url === '/json' ? 'application/json' : 'application/x-ndjson; charset=utf-8'
    res.writeHead(200, { 'content-type': type })
    const timer = setInterval(() => res.write('{"tick":true}\n'), 100)
    req.socket.once('close', () => clearInterval(timer))
  })
  gw = await startTestGateway((dir) => {
    db = join(dir, 'audit.db')
    return {
      admin: { token: ADMIN_TOKEN },
      issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE], clock_tolerance: '0s' }],
      api_keys: { store: { type: 'sqlite', path: join(dir, 'keys.db') } },
      roles: [
        { name: 'reader', assumed_by: [{ issuer: 'corp', subject: 'feed-reader' }], policies: ['feed'] },
        { name: 'bots', assumed_by: [{ issuer: 'api-keys', subject: 'bot-*' }], policies: ['feed'] },
      ],
      policies: [{ name: 'feed', statements: [{ sid: 'Feed', effect: 'allow', actions: ['GET'], routes: ['feed'] }] }],
      upstreams: [{ name: 'feed', url: upstream.url }],
      routes: [{ id: 'feed', path: '/*', methods: ['GET'], upstream: 'feed', accept: ['bearer', 'api_key'] }],
      audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    }
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
  await idp?.stop()
})

/** Opens `path` (request id `id`): resolves once its first line came, with how the answer ends: whole (`done`) or cut. */
async function open(path: string, credential: string, id: string): Promise<{ ended: Promise<'done' | 'cut'>; leave: () => Promise<void> }> {
  const response = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${credential}`, 'x-request-id': id } })
  expect(response.status).toBe(200)
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  expect((await reader.read()).done).toBe(false)
  const ended = (async () => {
    try {
      while (!(await reader.read()).done);
      return 'done' as const
    } catch {
      return 'cut' as const
    }
  })()
  return { ended, leave: () => reader.cancel() }
}

const within = <T>(promise: Promise<T>, ms: number) => Promise.race([promise, new Promise<'still open'>((resolve) => setTimeout(() => resolve('still open'), ms))])

async function apiKey(): Promise<{ id: string; key: string }> {
  const created = newApiKey()
  await gw.state.runtime.apiKeys!.store.insert({
    id: created.id, principal: 'bot-feed', description: null, hash: created.hash, createdAt: Date.now(), expiresAt: null, revokedAt: null, lastUsedAt: null,
  })
  return created
}

async function revoke(id: string): Promise<void> {
  const answer = await request(`${gw.adminUrl}/api/keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  await answer.body.dump()
  expect(answer.statusCode).toBe(200)
}

it('a JSON-lines stream is cut when its API key is revoked', async () => {
  const created = await apiKey()
  const { ended } = await open('/lines', created.key, 'lines-revoked')
  await revoke(created.id)
  // Before: it went on.
  expect(await within(ended, 5_000)).toBe('cut')
  const record = await waitForAuditRecord(db, 'lines-revoked')
  expect({ status: record.status, decision: record.decision }).toEqual({ status: 200, decision: 'allow' })
  expect(record.detail).toMatch(/^The caller's API key .* was revoked at .*: the gateway closed the streamed answer\.$/)
}, 30_000)

it('a JSON-lines stream is cut when its token expires', async () => {
  const exp = Math.floor(Date.now() / 1000) + 2
  const { ended } = await open('/lines', await idp.mint({ sub: 'feed-reader', aud: AUDIENCE, exp }), 'lines-expiry')
  expect(await within(ended, exp * 1000 + 5_000 - Date.now())).toBe('cut')
  const record = await waitForAuditRecord(db, 'lines-expiry')
  expect(record.detail).toBe(credentialExpiredNote(exp, 0, 'the streamed answer'))
}, 30_000)

it('a chunked JSON document is no subscription: it is not held, and goes on after a revocation', async () => {
  const created = await apiKey()
  const { ended, leave } = await open('/json', created.key, 'json-revoked')
  await revoke(created.id)
  expect(await within(ended, 2_500)).toBe('still open')
  await leave()
  // Its record says the client left, not that the gateway closed it.
  expect((await waitForAuditRecord(db, 'json-revoked')).detail).toBe('The client closed the connection before the answer ended.')
}, 30_000)
