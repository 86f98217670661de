// Found by the front-door probe: a WebSocket handshake's answer is relayed by the upgrade path
// (node:http's client, not undici), which took any status the upstream wrote. One under 100
// (`HTTP/1.1 099 …`, which Node's client parser reads) made ServerResponse.writeHead throw inside the
// client's 'response' event: an uncaught exception that drained and ended the whole gateway, every
// route's clients with it, because one upstream (or whatever answered at its address) misbehaved.
// One over 599 reached the client as it came, where an ordinary answer's is a 502 (RFC 9110 §15).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { HANDSHAKE_FIELDS } from '../helpers/websocket.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let upstream: RawUpstream
let gateway: TestGateway
let port: number

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bouncer-handshake-status-'))
  upstream = await startRawUpstream((head, socket) => {
    const status = /^GET \/ws\/(\d{3})/.exec(head)?.[1]
    socket.end(status ? `HTTP/1.1 ${status} Odd\r\nContent-Length: 2\r\n\r\nno` : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
  })
  gateway = await startTestGateway({
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    upstreams: [{ name: 'odd', url: upstream.url }],
    routes: [
      { id: 'ws', path: '/ws/*', upstream: 'odd', public: true, websocket: true },
      { id: 'all', path: '/*', upstream: 'odd', public: true },
    ],
  })
  port = Number(new URL(gateway.url).port)
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('an upstream that answers a WebSocket handshake with no HTTP status', () => {
  it.each(['099', '000', '999', '600'])('status %s: 502 upstream_error, recorded as such; the gateway serves on', async (status) => {
    const id = `handshake-status-${status}`
    const res = await rawRequest(port, `GET /ws/${status} HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ${id}\r\n${HANDSHAKE_FIELDS}\r\n`, { timeout: 3_000 })
    expect(res.status).toBe(502)
    expect(JSON.parse(res.body)).toMatchObject({ code: 'upstream_error', request_id: id })
    expect(JSON.parse(res.body).detail).toContain(`status ${Number(status)}`)
    const db = { type: 'sqlite' as const, path: join(dir, 'audit.db') }
    await waitFor(async () => (await searchAudit(db, { limit: 50 }).catch(() => [])).some((r) => r.request_id === id), 'its audit record')
    const [record] = (await searchAudit(db, { limit: 50 })).filter((r) => r.request_id === id)
    expect(record).toMatchObject({ status: 502, code: 'upstream_error', decision: 'error' })
    expect((await rawRequest(port, 'GET /after HTTP/1.1\r\nHost: gw\r\n\r\n', { timeout: 3_000 })).status).toBe(200)
  })
})
