// A client that gives up mid-body: what the audit record says. On HTTP/1.1 a body cut short before
// it was forwarded is recorded as 408 request_timeout ("did not arrive before the connection
// closed"), attempts null (nothing was sent upstream). The same client over HTTP/2, and the bytes.
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { startH2Gateway } from '../helpers/h2-gateway.ts'
import { FLAG, frame, FRAME, headerBlock, rawH2 } from '../helpers/h2-frames.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let pki: TestPki
let dir: string
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  pki = createPki()
  dir = mkdtempSync(join(tmpdir(), 'bouncer-aborted-uploads-'))
  upstream = await startUpstream()
  gateway = await startH2Gateway(pki, upstream.url, { max_body_bytes: 1_048_576 }, { audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' } })
})
afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function auditOf(requestId: string) {
  let found: Awaited<ReturnType<typeof searchAudit>>[number] | undefined
  await waitFor(async () => {
    found = (await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 100 }).catch(() => [])).find((r) => r.request_id === requestId)
    return found !== undefined
  }, `the audit record of ${requestId}`)
  const { status, decision, code, attempts, bytes_in } = found as NonNullable<typeof found>
  return { status, decision, code, attempts, bytes_in }
}

async function tlsH1(): Promise<TLSSocket> {
  const socket = tlsConnect({ host: '127.0.0.1', port: Number(new URL(gateway.url).port), ca: readFileSync(pki.ca.cert), servername: 'localhost', ALPNProtocols: ['http/1.1'] })
  await once(socket, 'secureConnect')
  return socket
}

describe('a client that gives up mid-body', () => {
  it('HTTP/1.1, before the body is forwarded: 408, nothing sent upstream (the reference)', async () => {
    const socket = await tlsH1()
    socket.write('POST /h1 HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: h1-small\r\nContent-Length: 500000\r\n\r\n')
    socket.write(Buffer.alloc(1000, 0x61))
    await waitFor(() => gateway.state.inFlight === 1, 'the request waiting for its body')
    socket.destroy()
    expect(await auditOf('h1-small')).toEqual({ status: 408, decision: 'deny', code: 'request_timeout', attempts: null, bytes_in: 0 })
  })

  it.each([
    ['with content-length', true, false],
    ['without content-length', false, false],
    // A form is read whole before anything is forwarded (its _method fields): what arrived is counted.
    ['a form, with content-length', true, true],
    ['a form, without content-length', false, true],
  ])('HTTP/2 (%s), the stream reset before the body is forwarded: recorded as HTTP/1.1 records it, nothing claimed sent', async (_name, declared, form) => {
    const id = `h2-${declared ? 'cl' : 'nocl'}${form ? '-form' : ''}`
    const raw = await rawH2(gateway.url, readFileSync(pki.ca.cert))
    const headers: Array<[string, string]> = [[':method', 'POST'], [':scheme', 'https'], [':path', '/h2'], [':authority', 'localhost'], ['x-request-id', id]]
    if (declared) headers.push(['content-length', '500000'])
    if (form) headers.push(['content-type', 'application/x-www-form-urlencoded'])
    raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock(headers)), frame(FRAME.DATA, 0, 1, Buffer.alloc(1000, 0x61)))
    await waitFor(() => gateway.state.inFlight === 1, 'the request waiting for its body')
    const cancel = Buffer.alloc(4)
    cancel.writeUInt32BE(0x8) // CANCEL
    raw.send(frame(FRAME.RST_STREAM, 0, 1, cancel))
    const record = await auditOf(id)
    raw.socket.destroy()
    expect(upstream.received.filter((r) => r.url === '/h2')).toEqual([]) // holds: nothing reached the upstream
    expect(record).toEqual({ status: 408, decision: 'deny', code: 'request_timeout', attempts: null, bytes_in: form ? 1000 : 0 })
  })

  it('HTTP/1.1 with Content-Length, cut after the body began to stream upstream: bytes_in counts what arrived, not what was announced', async () => {
    const socket = await tlsH1()
    socket.write('POST /h1-large HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: h1-large\r\nContent-Length: 500000\r\n\r\n')
    socket.write(Buffer.alloc(200_000, 0x61))
    await waitFor(() => gateway.state.runtime.upstreams.get('api')?.inFlight.count() === 1, 'the body to stream upstream')
    socket.destroy()
    const record = await auditOf('h1-large')
    await waitFor(() => upstream.received.some((r) => r.url === '/h1-large'), 'the upstream to see the cut body')
    const seen = upstream.received.find((r) => r.url === '/h1-large')
    expect(seen).toMatchObject({ aborted: true })
    expect(record.bytes_in).toBeLessThanOrEqual(200_000)
  })
})
