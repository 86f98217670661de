// Found by an adversarial probe (helper): a non-GET upgrade was authorized as its method and tunnelled upstream as a GET; a tunnel's record counted no bytes and no upstream_ms; an upstream's own CORS headers passed on handshake answers of a route with cors.
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { once } from 'node:events'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import type { AuditRecord } from '../../src/audit/record.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { waitFor } from '../helpers/wait.ts'
import { acceptWebSocket } from '../helpers/websocket.ts'

let wsServer: Server
const seen: IncomingMessage[] = []
let gw: TestGateway
let idp: TestIdentityProvider
let db: string

beforeAll(async () => {
  idp = await startIdentityProvider()
  wsServer = createServer((_req, res) => res.end('not a websocket'))
  wsServer.on('upgrade', (req, socket: Socket) => {
    seen.push(req)
    if (req.url?.startsWith('/cors/refuse')) {
      socket.end('HTTP/1.1 403 Forbidden\r\naccess-control-allow-origin: *\r\naccess-control-allow-credentials: true\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno')
      return
    }
    acceptWebSocket(req, socket)
    socket.on('data', (chunk: Buffer) => socket.write(chunk)) // raw echo
    socket.on('error', () => {})
    socket.on('end', () => socket.end())
  })
  wsServer.listen(0, '127.0.0.1')
  await once(wsServer, 'listening')
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-websocket-edges-'))
  db = join(dir, 'audit.db')
  gw = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'writer', assumed_by: [{ issuer: 'corp', subject: 'looker-reports' }], policies: ['post-only'] }],
    policies: [{ name: 'post-only', statements: [{ sid: 'PostOnly', effect: 'allow', actions: ['POST'], routes: ['ws'] }] }],
    upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
    routes: [
      { id: 'ws', path: '/ws/*', upstream: 'ws', websocket: true },
      { id: 'cors', path: '/cors/*', upstream: 'ws', public: true, websocket: true, cors: { origins: ['https://app.example'] } },
      { id: 'open', path: '/open/*', upstream: 'ws', public: true, websocket: true },
    ],
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  })
  await waitFor(() => gw.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})
afterAll(async () => {
  await gw.close()
  wsServer.close()
  await idp.stop()
})

function upgradeRaw(port: number, text: string): Promise<{ head: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let buf = ''
    socket.on('data', (c: Buffer) => {
      buf += c.toString('latin1')
      if (buf.includes('\r\n\r\n')) resolve({ head: buf, socket })
    })
    socket.on('error', reject)
    socket.on('close', () => resolve({ head: buf, socket }))
    socket.write(text)
  })
}

async function recordOf(requestId: string): Promise<AuditRecord> {
  let found: AuditRecord | undefined
  await waitFor(async () => {
    found = (await searchAudit({ type: 'sqlite', path: db }, { limit: 500 }).catch(() => [])).find((r) => r.request_id === requestId)
    return found !== undefined
  }, `the audit record of ${requestId}`)
  return found as AuditRecord
}

const KEY = 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'

describe('WebSocket method', () => {
  it('a POST upgrade, authorized only as POST, must not open a GET tunnel upstream', async () => {
    const token = await idp.token('looker-reports')
    const port = Number(new URL(gw.url).port)
    seen.length = 0
    const { head, socket } = await upgradeRaw(port, `POST /ws/chat HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${KEY}\r\n`)
    socket.destroy()
    // A WebSocket handshake is a GET (RFC 6455 §4.1); the caller's policy allows only POST, so no GET-tunnel should open.
    expect(head.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 400/)
    expect(seen.map((r) => r.method)).toEqual([])
  })

  it('control: the same caller doing a GET upgrade is refused 403', async () => {
    const token = await idp.token('looker-reports')
    const port = Number(new URL(gw.url).port)
    const { head, socket } = await upgradeRaw(port, `GET /ws/chat HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${KEY}\r\n`)
    socket.destroy()
    expect(head.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 403/)
  })
})

describe('WebSocket audit', () => {
  it('the tunnel record counts the bytes that crossed it', async () => {
    const port = Number(new URL(gw.url).port)
    const { head, socket } = await upgradeRaw(port, `GET /open/x HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ws-bytes-1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${KEY}\r\n`)
    expect(head).toMatch(/^HTTP\/1\.1 101/)
    const payload = Buffer.alloc(10_000, 0x61)
    let got = 0
    socket.on('data', (c: Buffer) => (got += c.length))
    socket.write(payload)
    await waitFor(() => got >= 10_000, 'echo')
    socket.destroy()
    const record = await recordOf('ws-bytes-1')
    expect(record.status).toBe(101)
    expect(record.upstream_ms).not.toBeNull() // a handshake was sent and answered: README says null only when nothing was sent
    expect(record.bytes_in).toBeGreaterThanOrEqual(10_000)
    expect(record.bytes_out).toBeGreaterThanOrEqual(10_000)
  })
})

describe('WebSocket on a route with cors', () => {
  it("the upstream's own CORS headers do not pass on a handshake it refuses (the route's CORS is the gateway's)", async () => {
    const port = Number(new URL(gw.url).port)
    const { head, socket } = await upgradeRaw(port, `GET /cors/refuse HTTP/1.1\r\nHost: gw\r\nOrigin: https://evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${KEY}\r\n`)
    socket.destroy()
    expect(head.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 403/)
    expect(head.toLowerCase()).not.toContain('access-control-allow-origin: *')
  })
})

describe('WebSocket with audit.durability: sync', () => {
  // A long flush interval: a record is in SQLite at once only when it was committed, not queued.
  let synced: TestGateway
  let syncedDb: string
  beforeAll(async () => {
    synced = await startTestGateway((dir) => ({
      upstreams: [{ name: 'ws', url: `http://127.0.0.1:${(wsServer.address() as AddressInfo).port}` }],
      routes: [{ id: 'open', path: '/*', upstream: 'ws', public: true, websocket: true }],
      audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), durability: 'sync', flush_interval: '30s' },
    }))
    syncedDb = join(synced.dir, 'audit.db')
  })
  afterAll(() => synced?.close())

  const syncedRecord = async (requestId: string) => (await searchAudit({ type: 'sqlite', path: syncedDb }, { limit: 50 }).catch(() => [])).find((r) => r.request_id === requestId)

  it('a tunnel\'s record, whole once the tunnel closes, is committed then, not queued for the flush interval', async () => {
    const port = Number(new URL(synced.url).port)
    const { head, socket } = await upgradeRaw(port, `GET /x HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ws-sync-tunnel\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${KEY}\r\n`)
    expect(head).toMatch(/^HTTP\/1\.1 101/)
    let got = 0
    socket.on('data', (c: Buffer) => (got += c.length))
    socket.write(Buffer.alloc(1_000, 0x61))
    await waitFor(() => got >= 1_000, 'echo')
    socket.destroy()
    let record: AuditRecord | undefined
    await waitFor(async () => (record = await syncedRecord('ws-sync-tunnel')) !== undefined, 'the tunnel\'s record, long before the 30 s flush interval', 5_000)
    expect(record).toMatchObject({ status: 101, route: 'open' })
    expect(record?.bytes_in).toBeGreaterThanOrEqual(1_000)
  })

  it('a handshake the upstream refuses is answered once its record is committed', async () => {
    const port = Number(new URL(synced.url).port)
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')))
    socket.write(`GET /cors/refuse HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ws-sync-refused\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${KEY}\r\n`)
    await once(socket, 'close') // the refusal is complete: its connection is closed after it
    expect(answer).toMatch(/^HTTP\/1\.1 403[^]*\r\n\r\nno$/)
    expect(await syncedRecord('ws-sync-refused')).toMatchObject({ status: 403, upstream_status: 403, bytes_out: 2 })
  })
})
