// MCP notification streams outlive their request, the only one authenticated, as WebSocket tunnels
// outlive their handshake; they now join the same registry (gateway/tunnels.ts) and end when what
// would refuse that request refuses it. Found by the helper that closed tunnels so:
// - a 2025-era session's GET stream ended at the token's plain `exp`, while verification still
//   accepted it for the issuer's clock_tolerance (the client, told nothing, reconnected with a token
//   the gateway still took);
// - a 2026-07-28 `subscriptions/listen` stream never ended: not at the token's expiry (it went on
//   delivering tools/list_changed to a caller whose token had long expired), not at a reload that
//   refused its caller, and it held a shutdown's drain to server.shutdown_timeout, then was cut;
// - a reload that made the endpoint refuse the caller (a scope now required, the issuer gone) left
//   a session's GET stream open.
import type { Client } from '@modelcontextprotocol/client'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { credentialExpiredNote } from '../../src/upstream/index.ts'
import { waitForAuditRecord } from '../helpers/audit.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { TestIdentityProvider } from '../helpers/identity-provider.ts'
import { auditRows, connect, MCP_RESOURCE, mcpTestConfig, type McpTestSetup, startMcpTestGateway } from '../helpers/mcp.ts'
import { waitFor } from '../helpers/wait.ts'

const TOLERANCE_S = 2
const STREAM = 'the MCP notification stream'
const LEGACY = '2025-11-25'

let setup: McpTestSetup
let idp: TestIdentityProvider
let gateway: TestGateway
let db: string

/** The test's config, `mcp` merged into the endpoint's; `issuer`: the provider's name in it. */
function config(mcp: Record<string, unknown> = {}, issuer = 'corp-sso'): Record<string, unknown> {
  const base = mcpTestConfig(idp.issuer, setup.upstream.url, setup.dir, mcp)
  const text = JSON.stringify({ ...base, issuers: [{ ...base.issuers[0], clock_tolerance: `${TOLERANCE_S}s` }], server: { shutdown_timeout: '20s' } })
  return JSON.parse(text.replaceAll('"corp-sso"', JSON.stringify(issuer))) as Record<string, unknown>
}

beforeAll(async () => {
  setup = await startMcpTestGateway('mcp-stream-lifecycle', (base) => {
    ;(base.issuers[0] as Record<string, unknown>).clock_tolerance = `${TOLERANCE_S}s`
    return { ...base, server: { shutdown_timeout: '20s' } }
  })
  ;({ idp, gateway } = setup)
  db = join(setup.dir, 'audit.db')
}, 60_000)

afterAll(() => setup?.close())

const mint = (exp: number, claims: Record<string, unknown> = {}) => idp.mint({ sub: 'looker-reports', aud: MCP_RESOURCE, exp, ...claims })

/** A 2025-era session and its GET stream (request id `requestId`): resolves with when the stream ended. */
async function legacyStream(token: string, requestId: string): Promise<{ ended: Promise<number>; session: string }> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': LEGACY }
  const init = await fetch(`${gateway.url}/mcp`, {
    method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: LEGACY, capabilities: {}, clientInfo: { name: 'stream', version: '1' } } }),
  })
  expect(init.status).toBe(200)
  await init.text()
  const session = init.headers.get('mcp-session-id') as string
  await (await fetch(`${gateway.url}/mcp`, { method: 'POST', headers: { ...headers, 'mcp-session-id': session }, body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' })).text()
  const stream = await fetch(`${gateway.url}/mcp`, { headers: { ...headers, accept: 'text/event-stream', 'mcp-session-id': session, 'x-request-id': requestId } })
  expect(stream.status).toBe(200)
  const reader = (stream.body as ReadableStream<Uint8Array>).getReader()
  const ended = (async () => {
    while (!(await reader.read()).done) { /* notifications */ }
    return Date.now()
  })()
  return { ended, session }
}

/** A 2026-07-28 client's `subscriptions/listen`, through the SDK: resolves with how and when it ended. */
async function subscription(token: string, headers: Record<string, string> = {}): Promise<{ client: Client; closed: Promise<{ how: string; at: number }> }> {
  const client = await connect(`${gateway.url}/mcp`, token, '2026-07-28', headers)
  const listening = await client.listen({ toolsListChanged: true })
  return { client, closed: listening.closed.then((how) => ({ how, at: Date.now() })) }
}

/** The records whose detail is `note`. */
const recordsNoting = (note: string) => auditRows(db, `detail = '${note.replaceAll("'", "''")}'`)

/** Whether `promise` settles within `ms`. */
const settlesWithin = (promise: Promise<unknown>, ms: number) => Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))])

it('a session\'s GET stream ends when verification stops accepting its token: exp plus the issuer\'s clock_tolerance', async () => {
  const exp = Math.floor(Date.now() / 1000) + 2
  const { ended, session } = await legacyStream(await mint(exp), 'legacy-expiry')
  // Before: it ended at exp, while the same token was still accepted for clock_tolerance.
  expect(await ended).toBeGreaterThanOrEqual((exp + TOLERANCE_S) * 1000 - 50)
  const record = await waitForAuditRecord(db, 'legacy-expiry')
  expect({ status: record.status, detail: record.detail }).toEqual({ status: 200, detail: credentialExpiredNote(exp, TOLERANCE_S, STREAM) })
  // The client opens another with a fresh token, on the same session.
  const again = await fetch(`${gateway.url}/mcp`, { headers: { authorization: `Bearer ${await mint(Math.floor(Date.now() / 1000) + 300)}`, accept: 'text/event-stream', 'mcp-protocol-version': LEGACY, 'mcp-session-id': session } })
  expect(again.status).toBe(200)
  await again.body?.cancel()
}, 30_000)

it('a 2026-07-28 subscriptions/listen stream ends at the same instant', async () => {
  const exp = Math.floor(Date.now() / 1000) + 2
  const { client, closed } = await subscription(await mint(exp))
  try {
    // Before: it never ended.
    expect(await settlesWithin(closed, (exp + TOLERANCE_S + 5) * 1000 - Date.now())).toBe(true)
    expect((await closed).at).toBeGreaterThanOrEqual((exp + TOLERANCE_S) * 1000 - 50)
    const note = credentialExpiredNote(exp, TOLERANCE_S, STREAM)
    await waitFor(() => recordsNoting(note).length === 1, 'the stream\'s record')
    expect(recordsNoting(note)[0]).toMatchObject({ status: 200, subject: 'looker-reports' })
  } finally {
    await client.close()
  }
}, 30_000)

it('a reload that makes the endpoint refuse the caller ends its streams; one it still accepts stays', async () => {
  const exp = Math.floor(Date.now() / 1000) + 300
  const scoped = await mint(exp, { scope: 'mcp:tools' })
  const unscoped = await mint(exp)
  const kept = await legacyStream(scoped, 'legacy-kept')
  const keptSub = await subscription(scoped)
  const refused = await legacyStream(unscoped, 'legacy-refused')
  const refusedSub = await subscription(unscoped)
  try {
    // mcp.scopes now requires a scope the second token lacks.
    await gateway.writeConfig(config({ scopes: ['mcp:tools'] }))
    expect((await gateway.reload()).ok).toBe(true)
    // Before: both stayed open.
    expect(await settlesWithin(refused.ended, 5_000)).toBe(true)
    expect(await settlesWithin(refusedSub.closed, 5_000)).toBe(true)
    const note = 'After a config reload, the token lacks the scope mcp:tools this MCP endpoint needs: the gateway closed the MCP notification stream.'
    expect((await waitForAuditRecord(db, 'legacy-refused')).detail).toBe(note)
    await waitFor(() => recordsNoting(note).length === 2, 'the subscription\'s record')
    // The caller it still accepts keeps its streams.
    expect(await settlesWithin(Promise.race([kept.ended, keptSub.closed]), 500)).toBe(false)

    // The issuer gone (another one in its place, its roles' trust rules too).
    await gateway.writeConfig(config({ scopes: ['mcp:tools'] }, 'corp-sso-2'))
    expect((await gateway.reload()).ok).toBe(true)
    expect(await settlesWithin(kept.ended, 5_000)).toBe(true)
    expect(await settlesWithin(keptSub.closed, 5_000)).toBe(true)
    expect((await waitForAuditRecord(db, 'legacy-kept')).detail).toBe(`After a config reload, issuer "corp-sso" (${idp.issuer}) is no longer trusted: the gateway closed the MCP notification stream.`)
  } finally {
    await Promise.all([keptSub.client.close(), refusedSub.client.close()])
    await gateway.writeConfig(config())
    await gateway.reload()
  }
}, 60_000)

it('a reload that takes its browser\'s origin out of mcp.allowed_origins ends its stream', async () => {
  const origin = 'https://inspector.example'
  await gateway.writeConfig(config({ allowed_origins: [origin] }))
  expect((await gateway.reload()).ok).toBe(true)
  const { client, closed } = await subscription(await mint(Math.floor(Date.now() / 1000) + 300), { origin })
  try {
    await gateway.writeConfig(config())
    expect((await gateway.reload()).ok).toBe(true)
    // Before: it stayed open.
    expect(await settlesWithin(closed, 5_000)).toBe(true)
    const note = `After a config reload, its origin is no longer allowed (Origin ${JSON.stringify(origin)} may not call this MCP endpoint (mcp.allowed_origins)): the gateway closed the MCP notification stream.`
    await waitFor(() => recordsNoting(note).length === 1, 'the stream\'s record')
  } finally {
    await client.close()
  }
}, 30_000)

it('the drain ends every notification stream at its start, and does not wait for them', async () => {
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'keys', 20_000)
  const token = await mint(Math.floor(Date.now() / 1000) + 300)
  const legacy = await legacyStream(token, 'legacy-drained')
  const { closed } = await subscription(token)
  const started = performance.now()
  await gateway.shutdown()
  // Before: the subscription held the drain to server.shutdown_timeout (20 s), then was cut.
  expect(performance.now() - started).toBeLessThan(5_000)
  expect(await settlesWithin(Promise.all([legacy.ended, closed]), 1_000)).toBe(true)
  // Each stream's record says why it ended.
  const rows = recordsNoting('The gateway was shutting down: it ended the MCP notification stream for the client to reconnect to another instance.')
  expect(rows.map((row) => ({ status: row.status, subject: row.subject }))).toEqual([{ status: 200, subject: 'looker-reports' }, { status: 200, subject: 'looker-reports' }])
}, 60_000)
