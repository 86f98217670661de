// Found by an adversarial probe (helper): what the gateway relays of an upstream's answer. Before:
// an HTTP/2 client's stream was left open when the upstream repeated X-Content-Type-Options (502 for
// Content-Type), a cut answer was reset with NO_ERROR, a 304 with Content-Length reached HTTP/1.1
// clients as a closed connection, an upstream dying after its head left the client nothing while
// the audit said 200, and status 999 was relayed as allowed.
import { once } from 'node:events'
import { connect as connectTcp, type Socket } from 'node:net'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect, type ClientHttp2Session } from 'node:http2'
import { tmpdir } from 'node:os'
import { gzipSync } from 'node:zlib'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { errorCode, FLAG, frame, FRAME, headerBlock, rawH2, requestHeaders } from '../helpers/h2-frames.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts'

const ok = (extra = '', body = 'ok') => `HTTP/1.1 200 OK\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`

/** Raw answers by request path. */
const ANSWERS: Record<string, string | ((socket: Socket) => void)> = {
  // Both an app and a middleware (or nginx add_header) set it: common, and legal HTTP/1.1.
  'dup-nosniff': ok('X-Content-Type-Options: nosniff\r\nX-Content-Type-Options: nosniff\r\n'),
  'dup-content-type': ok('Content-Type: text/plain\r\nContent-Type: text/plain\r\n'),
  'early-hints': 'HTTP/1.1 103 Early Hints\r\nLink: <http://internal.corp:8443/app.css>; rel=preload\r\n\r\n' + ok(),
  // A chunked answer cut mid-chunk: the upstream dies after 5 of 10 bytes.
  'cut-chunked': (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\na\r\nid,na')
    setTimeout(() => s.destroy(), 100)
  },
  // The head, then the upstream dies before any body byte.
  'head-then-reset': (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n')
    setTimeout(() => s.destroy(), 100)
  },
  status999: 'HTTP/1.1 999 Whatever\r\nContent-Length: 2\r\n\r\nhi',
  // A transfer coding other than chunked (RFC 9112 §7): undici undoes the chunks, not the gzip.
  'te-gzip': (s) => {
    const gz = gzipSync('id,name\n1,ada\n')
    s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${gz.length.toString(16)}\r\n`), gz, Buffer.from('\r\n0\r\n\r\n')]))
  },
  // Refuses an upload at its head, before reading the body (an app's size check, an auth filter), and closes.
  'early-413': (s) => void s.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig'),
  // Some servers (IIS, old Java containers) send 100 Continue to every POST, asked or not.
  'unasked-continue': 'HTTP/1.1 100 Continue\r\n\r\n' + ok(),
  // An answer that ends when the connection does (no length, not chunked): cut by a reset, or whole with a FIN.
  'close-delimited-reset': (s) => {
    s.write(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${'x'.repeat(500)}`)
    setTimeout(() => s.resetAndDestroy(), 100)
  },
  'close-delimited-fin': (s) => {
    s.write(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${'x'.repeat(500)}`)
    setTimeout(() => s.end(), 100)
  },
  '204-with-length': 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello',
  // A head past undici's 16 KiB: one cookie of 20 KB.
  'huge-head': ok(`Set-Cookie: big=${'x'.repeat(20_000)}\r\n`),
}

let raw: RawUpstream
let node304: TestUpstream
let pki: TestPki
let ca: Buffer
let dir: string
let gw1: TestGateway // HTTP/1.1, audited
let gw2: TestGateway // TLS + HTTP/2

beforeAll(async () => {
  raw = await startRawUpstream((head, socket) => {
    const path = head.split(' ')[1]!.slice(1)
    const answer = ANSWERS[path] ?? ok()
    if (typeof answer === 'string') socket.write(Buffer.from(answer, 'latin1'))
    else answer(socket)
  })
  // A plain node:http upstream answering a conditional GET: 304 with the Content-Length the 200
  // would have (RFC 9110 §8.6 allows it; ASP.NET MVC 2.0 and others send it).
  node304 = await startUpstream((req, res) => {
    if (req.headers['if-none-match'] === '"v1"') {
      res.writeHead(304, { etag: '"v1"', 'content-length': '42' })
      res.end()
      return
    }
    res.writeHead(200, { etag: '"v1"', 'content-length': '42' })
    res.end('x'.repeat(42))
  })
  pki = createPki()
  ca = readFileSync(pki.ca.cert)
  dir = mkdtempSync(join(tmpdir(), 'bouncer-upstream-answers-'))
  const upstreams = [{ name: 'raw', url: raw.url, timeout: '3s' }, { name: 'n304', url: node304.url }]
  const routes = [
    { id: 'n304', path: '/etag', upstream: 'n304', public: true },
    { id: 'raw', path: '/*', upstream: 'raw', public: true },
  ]
  gw1 = await startTestGateway({
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    upstreams,
    routes,
  })
  gw2 = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key }, http2: true, hosts: ['localhost'] },
    upstreams,
    routes,
  })
}, 60_000)

afterAll(async () => {
  await gw1?.close()
  await gw2?.close()
  await raw?.close()
  await node304?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

interface H2Result { status?: number; headers?: Record<string, unknown>; body: string; ended: boolean; aborted: boolean; error?: string; rstCode?: number; timedOut: boolean }

async function h2get(path: string, headers: Record<string, string> = {}, timeoutMs = 4_000): Promise<H2Result> {
  const client: ClientHttp2Session = connect(gw2.url, { ca, servername: 'localhost' })
  client.on('error', () => {})
  await once(client, 'connect')
  return new Promise((resolve) => {
    const stream = client.request({ ':path': path, ...headers })
    const chunks: Buffer[] = []
    const result: H2Result = { body: '', ended: false, aborted: false, timedOut: false }
    stream.on('response', (h) => {
      result.status = Number(h[':status'])
      result.headers = h
    })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => (result.ended = true))
    stream.on('aborted', () => (result.aborted = true))
    stream.on('error', (e) => (result.error = String(e)))
    const timer = setTimeout(() => {
      result.timedOut = true
      result.body = Buffer.concat(chunks).toString()
      client.destroy()
      resolve(result)
    }, timeoutMs)
    stream.on('close', () => {
      clearTimeout(timer)
      result.body = Buffer.concat(chunks).toString()
      result.rstCode = stream.rstCode
      client.close()
      resolve(result)
    })
  })
}

async function auditOf(requestId: string) {
  await waitFor(async () => (await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 200, route: 'raw' }).catch(() => [])).some((r) => r.request_id === requestId), `the audit record of ${requestId}`)
  const records = await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 200, route: 'raw' })
  return records.find((r) => r.request_id === requestId)!
}

describe('an upstream answer with a repeated single-value field', () => {
  it('control: an HTTP/1.1 client gets the 200 as sent', async () => {
    const res = await request(`${gw1.url}/dup-nosniff`)
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('ok')
  })

  it('an HTTP/2 client gets an answer (the 200, or a 502), not a stream left open with nothing on it', async () => {
    const answer = await h2get('/dup-nosniff')
    expect(answer.timedOut).toBe(false)
    expect(answer.status).toBeDefined()
    // And the gateway is not holding it: nothing left in flight.
    await waitFor(() => gw2.state.inFlight === 0, 'no request in flight', 2_000)
  })

  it('an HTTP/2 client gets the 200 that an HTTP/1.1 client gets (two Content-Type fields: 502 instead)', async () => {
    const h1 = await request(`${gw1.url}/dup-content-type`)
    await h1.body.dump()
    expect(h1.statusCode).toBe(200)
    const answer = await h2get('/dup-content-type')
    expect(answer.status).toBe(200)
    expect(answer.headers?.['content-type']).toBe('text/plain')
  })

})

describe('a truncated upstream answer to an HTTP/2 client', () => {
  it('is reset with an error code (not NO_ERROR), so the client can tell it from a whole answer', async () => {
    const h2 = await rawH2(gw2.url, ca)
    h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(requestHeaders('/cut-chunked'))))
    const reset = await h2.waitFor((f) => f.stream === 1 && (f.type === FRAME.RST_STREAM || (f.type === FRAME.DATA && (f.flags & FLAG.END_STREAM) !== 0)), 'the stream\'s end')
    h2.socket.destroy()
    expect(reset.type).toBe(FRAME.RST_STREAM)
    expect(errorCode(reset)).not.toBe(0) // 0x0 NO_ERROR says "the answer was whole" (RFC 9113 §8.1)
  })

  it('node:http2 as the client: the cut CSV is not delivered as a complete answer', async () => {
    const answer = await h2get('/cut-chunked')
    expect(answer.status).toBe(200)
    expect(answer.body).toBe('id,na')
    // What a client needs to notice the cut: an error, or at least no clean end.
    expect(answer.error !== undefined || answer.aborted || (answer.rstCode ?? 0) !== 0).toBe(true)
  })
})

describe('an upstream 304 with Content-Length (RFC 9110 §8.6)', () => {
  it('control: an HTTP/2 client gets the 304', async () => {
    const answer = await h2get('/etag', { 'if-none-match': '"v1"' })
    expect(answer.status).toBe(304)
  })

  it('an HTTP/1.1 client gets the 304 too (a cache revalidating through the gateway)', async () => {
    const port = Number(new URL(gw1.url).port)
    const res = await rawRequest(port, 'GET /etag HTTP/1.1\r\nHost: gw\r\nIf-None-Match: "v1"\r\nX-Request-Id: answers-304\r\n\r\n')
    expect(res.raw.slice(0, 12)).toBe('HTTP/1.1 304')
  })
})

describe('an upstream that sends its head, then dies before any body byte (HTTP/1.1 client)', () => {
  it('the client gets a status (nothing of the answer was written yet: 502 upstream_error), and the audit record says what it got', async () => {
    const port = Number(new URL(gw1.url).port)
    const res = await rawRequest(port, 'GET /head-then-reset HTTP/1.1\r\nHost: gw\r\nX-Request-Id: answers-head-reset\r\n\r\n')
    const record = await auditOf('answers-head-reset')
    // What the audit claims the client got must be what it got.
    expect({ clientStatus: res.status, auditStatus: record.status }).toEqual({ clientStatus: record.status, auditStatus: record.status })
    expect(res.status).toBe(502)
  })
})

describe('1xx answers from the upstream', () => {
  // undici 7.30 (client-h1.js) destroys the connection on an unsolicited 100 Continue, with no option to skip it:
  // upstream/interim.ts takes it out before undici reads it (nginx 1.22 does worse: relays it as the final answer and closes).
  it('103 Early Hints are not relayed, and their Link (an internal host) does not leak', async () => {
    const port = Number(new URL(gw1.url).port)
    const res = await rawRequest(port, 'GET /early-hints HTTP/1.1\r\nHost: gw\r\n\r\n')
    expect(res.status).toBe(200)
    expect(res.raw).not.toContain('internal.corp')
    const answer = await h2get('/early-hints')
    expect(answer.status).toBe(200)
    expect(JSON.stringify(answer.headers)).not.toContain('internal.corp')
  })

  it('an unasked 100 Continue is read past (RFC 9110 §15.2), as undici 7 alone cannot (ups4-unasked-continue)', async () => {
    const res = await request(`${gw1.url}/unasked-continue`)
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('ok')
  })
})

describe('an invalid status code from the upstream (RFC 9110 §15: 100..599)', () => {
  it('an HTTP/1.1 client gets 502 as an HTTP/2 client does, not status 999 recorded as allow', async () => {
    const h2 = await h2get('/status999')
    expect(h2.status).toBe(502)
    const port = Number(new URL(gw1.url).port)
    const res = await rawRequest(port, 'GET /status999 HTTP/1.1\r\nHost: gw\r\nX-Request-Id: answers-999\r\n\r\n')
    const record = await auditOf('answers-999')
    expect({ status: res.status, audit: record.status, decision: record.decision }).toEqual({ status: 502, audit: 502, decision: 'error' })
  })
})

describe('an answer with a transfer coding other than chunked (Transfer-Encoding: gzip, chunked)', () => {
  it('is 502 upstream_error, not relayed as a body of gzip bytes without the field that said so', async () => {
    const res = await request(`${gw1.url}/te-gzip`)
    const body = (await res.body.json()) as { code: string; detail: string }
    expect(res.statusCode).toBe(502)
    expect(body.code).toBe('upstream_error')
    expect(body.detail).toContain('Transfer-Encoding "gzip, chunked"')
  })
})

describe('an answer whose head is larger than the gateway reads (16 KiB)', () => {
  it('is 502 upstream_error saying so, not "failed mid-exchange"', async () => {
    const res = await request(`${gw1.url}/huge-head`)
    const problem = (await res.body.json()) as { code: string; detail: string }
    expect({ status: res.statusCode, code: problem.code }).toEqual({ status: 502, code: 'upstream_error' })
    expect(problem.detail).toContain('head larger than')
  })
})

describe('an answer that runs until the upstream closes (no Content-Length, not chunked)', () => {
  it('cut by a reset: the client sees a cut answer (no last chunk) and the audit says error, not a whole 200', async () => {
    const port = Number(new URL(gw1.url).port)
    const res = await rawRequest(port, 'GET /close-delimited-reset HTTP/1.1\r\nHost: gw\r\nX-Request-Id: answers-cd-reset\r\n\r\n')
    expect(res.status).toBe(200) // the head went before the reset
    expect(res.raw.endsWith('0\r\n\r\n')).toBe(false)
    const record = await auditOf('answers-cd-reset')
    expect({ decision: record.decision, code: record.code }).toEqual({ decision: 'error', code: 'upstream_error' })
  })

  it('ended by a FIN: whole, with its last chunk, audited allow', async () => {
    const port = Number(new URL(gw1.url).port)
    const res = await rawRequest(port, 'GET /close-delimited-fin HTTP/1.1\r\nHost: gw\r\nX-Request-Id: answers-cd-fin\r\n\r\n')
    expect(res.raw.endsWith('0\r\n\r\n')).toBe(true)
    expect(res.raw).toContain('x'.repeat(500))
    const record = await auditOf('answers-cd-fin')
    expect({ decision: record.decision, bytes: record.bytes_out }).toEqual({ decision: 'allow', bytes: 500 })
  })
})

describe('an answer cut short for an HTTP/1.0 client (its end is the connection\'s: no length, no chunks)', () => {
  it('ends with a TCP reset, not a FIN that says the cut CSV is whole', async () => {
    const socket = connectTcp(Number(new URL(gw1.url).port), '127.0.0.1')
    socket.write('GET /cut-chunked HTTP/1.0\r\nHost: gw\r\n\r\n')
    let received = ''
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')))
    const ending = await new Promise<string>((resolve) => {
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
      socket.on('end', () => resolve('FIN'))
    })
    socket.destroy()
    expect(received).not.toContain('content-length')
    expect(ending).toBe('ECONNRESET')
  })
})

describe('an upstream that answers an upload before it has all come (an early 413)', () => {
  const HUGE = 2_000_000
  const part = Buffer.alloc(100_000, 'q') // past the 64 KiB the gateway waits for: the request goes on while the rest comes

  it('HTTP/1.1: the 413 comes with Connection: close and the connection ends, not kept alive with the body unread (the next request hung)', async () => {
    const socket = connectTcp(Number(new URL(gw1.url).port), '127.0.0.1')
    socket.on('error', () => {})
    socket.write(`POST /early-413 HTTP/1.1\r\nHost: gw\r\nContent-Length: ${HUGE}\r\n\r\n`)
    socket.write(part)
    let received = ''
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')))
    await waitFor(() => received.includes('\r\n\r\nbig'), 'the 413', 5_000)
    expect(received.slice(0, 12)).toBe('HTTP/1.1 413')
    expect(received.toLowerCase()).toContain('\r\nconnection: close\r\n')
    await waitFor(() => socket.readableEnded || socket.destroyed, 'the connection closed', 5_000)
    socket.destroy()
  })

  it('HTTP/2: the 413 comes and the stream is reset with NO_ERROR (RFC 9113 §8.1), not left half-open', async () => {
    const client: ClientHttp2Session = connect(gw2.url, { ca, servername: 'localhost' })
    client.on('error', () => {})
    await once(client, 'connect')
    const stream = client.request({ ':method': 'POST', ':path': '/early-413', 'content-length': String(HUGE) }, { endStream: false })
    stream.on('error', () => {})
    stream.write(part)
    let status = 0
    stream.on('response', (h) => (status = Number(h[':status'])))
    stream.resume()
    const closed = await Promise.race([once(stream, 'close').then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 3_000))])
    client.destroy()
    expect(status).toBe(413)
    expect(closed).toBe(true)
    expect(stream.rstCode).toBe(0)
  })
})

describe('a 204 with a Content-Length from the upstream', () => {
  it('reaches the client without it (RFC 9110 §8.6), and without the body', async () => {
    const port = Number(new URL(gw1.url).port)
    const res = await rawRequest(port, 'GET /204-with-length HTTP/1.1\r\nHost: gw\r\n\r\n', { timeout: 1_500 }) // a 204 has no end to wait for
    expect(res.status).toBe(204)
    expect(res.headers['content-length']).toBeUndefined()
    expect(res.raw).not.toContain('hello')
  })
})
