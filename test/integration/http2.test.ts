// HTTP/2 to clients (issue 16, point 2): h2 by ALPN on the TLS listener with HTTP/1.1 alongside,
// and everything the HTTP/1.1 path guarantees holding for h2 — header hygiene and h2's own abuses
// (a :path that is not origin-form, :authority against Host, connection-specific headers), hostile
// paths, limits, streaming, the audit record — and the known floods (rapid reset, CONTINUATION,
// PING and SETTINGS) ending the abuser's connection while other clients keep being served.
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { constants, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { H2_MAX_CONCURRENT_STREAMS, H2_RESET_BURST } from '../../src/gateway/http2.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { errorCode, FLAG, frame, FRAME, headerBlock, rawH2, requestHeaders } from '../helpers/h2-frames.ts'
import { h2Session } from '../helpers/h2-gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const MAX_BODY = 1_048_576
const PROTOCOL_ERROR = 0x1

let pki: TestPki
let ca: Buffer
let dir: string
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  pki = createPki()
  ca = readFileSync(pki.ca.cert)
  dir = mkdtempSync(join(tmpdir(), 'bouncer-h2-'))
  upstream = await startUpstream(async (req, res, received) => {
    if (req.url?.startsWith('/big/')) {
      // 8 MB in 64 KB chunks, with backpressure: the client's window paces it.
      const chunk = Buffer.alloc(65_536, 0x61)
      for (let i = 0; i < 128; i++) if (!res.write(chunk)) await once(res, 'drain')
      res.end()
      return
    }
    const body = JSON.stringify({ ...received, body: received.body.slice(0, 64) })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  gateway = await startTestGateway({
    server: {
      tls: { cert: pki.server.cert, key: pki.server.key },
      http2: true,
      hosts: ['localhost'],
      max_header_bytes: 4096,
      max_body_bytes: MAX_BODY,
      request_timeout: '3s',
      keep_alive_timeout: '1s',
      send_timeout: '1s',
    },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    functions: [
      { name: 'repeated', module: fileURLToPath(new URL('../fixtures/functions/repeated-headers.mjs', import.meta.url)), concurrency: 1 },
      { name: 'forger', module: fileURLToPath(new URL('../fixtures/functions/hostile.mjs', import.meta.url)), concurrency: 1, timeout: '5s' },
    ],
    routes: [
      { id: 'repeated', path: '/fn/repeated', function: 'repeated', public: true },
      { id: 'forger', path: '/fn/forger', function: 'forger', public: true },
      { id: 'ws', path: '/ws', upstream: 'api', public: true, websocket: true },
      { id: 'all', path: '/*', upstream: 'api', public: true },
    ],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

interface H2Answer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** The stream's RST_STREAM code when it was reset instead of answered. */
  reset?: number
}

const session = () => h2Session(gateway.url, ca)

function h2(client: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer | Buffer[]): Promise<H2Answer> {
  return new Promise((resolve) => {
    const stream = client.request(headers, { endStream: body === undefined })
    const chunks: Buffer[] = []
    let answer: Omit<H2Answer, 'body'> = { status: 0, headers: {} }
    stream.on('response', (h) => (answer = { status: Number(h[':status']), headers: h }))
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    // The answer is whole at 'end'; a stream still sending a refused body closes only later (the
    // server resets it with NO_ERROR, RFC 9113 §8.1, but node:http2's client waits for its writes).
    stream.on('end', () => resolve({ ...answer, body: Buffer.concat(chunks) }))
    stream.on('close', () => resolve({ ...answer, body: Buffer.concat(chunks), reset: stream.rstCode || undefined }))
    stream.on('error', () => {})
    if (body !== undefined) {
      for (const part of Array.isArray(body) ? body : [body]) stream.write(part)
      stream.end()
    }
  })
}

function json(answer: H2Answer): Record<string, unknown> {
  return JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>
}

describe('HTTP/2 by ALPN, HTTP/1.1 alongside', () => {
  it('serves h2 to node:http2, with the same answers and forwarded headers as HTTP/1.1', async () => {
    const client = await session()
    expect(client.alpnProtocol).toBe('h2')
    expect(client.remoteSettings.maxConcurrentStreams).toBe(H2_MAX_CONCURRENT_STREAMS)
    const answer = await h2(client, { ':path': '/hello?x=1', 'x-request-id': 'h2-hello', 'x-forwarded-for': '6.6.6.6', 'x-bouncer-assertion': 'forged' })
    expect(answer.status).toBe(200)
    expect(answer.headers['x-request-id']).toBe('h2-hello')
    const seen = json(answer) as { url: string; headers: Record<string, string> }
    expect(seen.url).toBe('/hello?x=1')
    expect(seen.headers['x-forwarded-proto']).toBe('https')
    expect(seen.headers['x-forwarded-host']).toMatch(/^127\.0\.0\.1:\d+$|^localhost/)
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1')
    expect(seen.headers['x-bouncer-assertion']).toBeUndefined()
    // No pseudo-header reaches the upstream as a header.
    expect(Object.keys(seen.headers).filter((name) => name.startsWith(':'))).toEqual([])
    client.close()
  })

  it('serves undici over h2 and over HTTP/1.1 on the same port', async () => {
    for (const allowH2 of [true, false]) {
      const agent = new Agent({ allowH2, connect: { ca, servername: 'localhost' } })
      const res = await request(`${gateway.url}/alongside`, { dispatcher: agent })
      expect(res.statusCode).toBe(200)
      const seen = (await res.body.json()) as { headers: Record<string, string> }
      expect(seen.headers['x-forwarded-proto']).toBe('https')
      await agent.close()
    }
  })

  it('writes an audit record for an h2 request', async () => {
    const client = await session()
    expect((await h2(client, { ':path': '/audited', 'x-request-id': 'h2-audited' })).status).toBe(200)
    client.close()
    await waitFor(async () => (await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 50 }).catch(() => [])).some((r) => r.request_id === 'h2-audited' && r.status === 200 && r.path === '/audited'), 'the audit record')
  })
})

describe('a function answering over HTTP/2', () => {
  it('a header its handler sets twice in two cases is one field, the later value (it was 500: node:http2 refuses a second Content-Type), audited as the function\'s', async () => {
    const client = await session()
    const answer = await h2(client, { ':path': '/fn/repeated', 'x-request-id': 'h2-fn-repeated' })
    expect({ status: answer.status, type: answer.headers['content-type'], body: json(answer) }).toEqual({ status: 200, type: 'application/json', body: { overridden: true } })
    // A `result` the handler posts itself with a field twice is refused as a malformed one, not a 500.
    const forged = await h2(client, { ':path': '/fn/forger?mode=post-bad-result&name=content-type&value=text%2Fplain&twice=1' })
    expect({ status: forged.status, code: json(forged).code }).toEqual({ status: 502, code: 'function_error' })
    client.close()
    await waitFor(async () => (await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 50 }).catch(() => [])).some((r) => r.request_id === 'h2-fn-repeated' && r.status === 200 && r.upstream === 'function:repeated'), 'the audit record')
  })
})

describe('HTTP/2 header hygiene', () => {
  it('refuses :authority and Host that disagree', async () => {
    const client = await session()
    const answer = await h2(client, { ':path': '/x', ':authority': 'localhost', host: 'evil.example' })
    expect(answer.status).toBe(400)
    expect(json(answer)).toMatchObject({ code: 'bad_request', detail: ':authority and Host name different hosts' })
    // The same name in both, in any case, is one host.
    expect((await h2(client, { ':path': '/x', ':authority': 'localhost', host: 'LOCALHOST' })).status).toBe(200)
    client.close()
  })

  it('resets a :path that is not origin-form before it is routed', async () => {
    const before = upstream.received.length
    const client = await session()
    for (const path of ['http://evil.example/admin', 'admin', 'evil.example:443']) {
      const answer = await h2(client, { ':path': path })
      expect(answer.reset).toBe(constants.NGHTTP2_PROTOCOL_ERROR)
    }
    client.close()
    expect(upstream.received.length).toBe(before)
  })

  it('refuses the hostile paths HTTP/1.1 refuses', async () => {
    const client = await session()
    for (const path of ['/a/%2e%2e/admin', '/a%2Fb', '/api/admin;x/users', '/a/..;/b']) {
      const answer = await h2(client, { ':path': path })
      expect(answer.status, path).toBe(400)
      expect(json(answer).code, path).toBe('bad_path')
    }
    client.close()
  })

  it('resets a stream carrying a connection-specific header (Upgrade, Connection, Transfer-Encoding, TE) and keeps the session', async () => {
    const before = upstream.received.length
    const raw = await rawH2(gateway.url, ca)
    const abuses: Array<[string, string]> = [['upgrade', 'websocket'], ['connection', 'keep-alive'], ['transfer-encoding', 'chunked'], ['te', 'gzip'], ['keep-alive', 'timeout=5']]
    let stream = 1
    for (const header of abuses) {
      const path = header[0] === 'upgrade' ? '/ws' : '/x'
      raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, stream, headerBlock(requestHeaders(path, [header]))))
      const reset = await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.stream === stream, `a reset of stream ${stream}`)
      expect(errorCode(reset)).toBe(PROTOCOL_ERROR)
      stream += 2
    }
    // The session is fine: a clean request on it is answered (te: trailers is allowed).
    raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, stream, headerBlock(requestHeaders('/clean', [['te', 'trailers']]))))
    await raw.waitFor((f) => f.type === FRAME.DATA && f.stream === stream && (f.flags & FLAG.END_STREAM) !== 0, 'the clean answer')
    raw.socket.destroy()
    expect(upstream.received.slice(before).map((r) => r.url)).toEqual(['/clean'])
  })

  it('refuses CONNECT in SPEC\'s format', async () => {
    const client = await session()
    const answer = await h2(client, { ':method': 'CONNECT', ':authority': 'internal.example:443' })
    expect(answer.status).toBe(400)
    expect(json(answer).code).toBe('bad_path')
    client.close()
  })
})

describe('HTTP/2 limits and streaming', () => {
  it('answers 431 for headers over max_header_bytes', async () => {
    const client = await session()
    const answer = await h2(client, { ':path': '/x', 'x-big': 'a'.repeat(5000) })
    expect(answer.status).toBe(431)
    expect(json(answer).code).toBe('headers_too_large')
    client.close()
  })

  it('answers 413 for a body over max_body_bytes, declared or streamed without a length', async () => {
    const client = await session()
    const declared = await h2(client, { ':method': 'POST', ':path': '/upload', 'content-length': String(MAX_BODY + 1) }, Buffer.alloc(MAX_BODY + 1))
    expect(declared.status).toBe(413)
    const streamed = await h2(client, { ':method': 'POST', ':path': '/upload' }, Array.from({ length: 20 }, () => Buffer.alloc(65_536)))
    expect(streamed.status).toBe(413)
    expect(json(streamed).code).toBe('payload_too_large')
    client.destroy()
  })

  it('forwards bodies with and without a length, and streams an 8 MB answer', async () => {
    const client = await session()
    const sized = await h2(client, { ':method': 'POST', ':path': '/sized', 'content-length': '300000' }, Buffer.alloc(300_000, 0x62))
    expect(json(sized)).toMatchObject({ bodyBytes: 300_000 })
    const unsized = await h2(client, { ':method': 'POST', ':path': '/unsized' }, Array.from({ length: 8 }, () => Buffer.alloc(100_000, 0x63)))
    const seen = json(unsized) as { bodyBytes: number; headers: Record<string, string> }
    expect(seen.bodyBytes).toBe(800_000)
    expect(seen.headers['transfer-encoding']).toBe('chunked')
    const big = await h2(client, { ':path': '/big/download' })
    expect(big.status).toBe(200)
    expect(big.body.length).toBe(8 * 1_048_576)
    client.close()
  })

  it('answers a refused upload, then resets its stream with NO_ERROR instead of reading the rest (RFC 9113 §8.1)', async () => {
    const raw = await rawH2(gateway.url, ca)
    raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock([[':method', 'POST'], [':scheme', 'https'], [':path', '/upload'], [':authority', 'localhost'], ['content-length', String(MAX_BODY * 2)]])))
    raw.send(frame(FRAME.DATA, 0, 1, Buffer.alloc(1000)))
    const reset = await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.stream === 1, 'the reset after the answer')
    expect(errorCode(reset)).toBe(0)
    const answered = raw.frames.filter((f) => f.stream === 1 && f.type === FRAME.DATA).map((f) => f.payload.toString('utf8')).join('')
    expect(JSON.parse(answered)).toMatchObject({ code: 'payload_too_large' })
    raw.socket.destroy()
  })

  it('closes a session idle for keep_alive_timeout with GOAWAY', async () => {
    const client = await session()
    expect((await h2(client, { ':path': '/then-idle' })).status).toBe(200)
    const [code] = (await once(client, 'goaway')) as [number]
    expect(code).toBe(constants.NGHTTP2_NO_ERROR)
    await once(client, 'close')
  })

  it('resets a stream whose client stops reading (send_timeout), and only that stream', async () => {
    const client = await session()
    const stalled = client.request({ ':path': '/big/stalled' })
    stalled.pause() // read nothing: the flow-control window fills and the gateway's writes stall
    stalled.on('error', () => {})
    await once(stalled, 'response')
    await once(stalled, 'close')
    expect(stalled.rstCode).toBe(constants.NGHTTP2_CANCEL)
    // The session goes on.
    expect((await h2(client, { ':path': '/after-stall' })).status).toBe(200)
    client.close()
  })

  it('answers 408 when a body trickles past request_timeout', async () => {
    const client = await session()
    const stream = client.request({ ':method': 'POST', ':path': '/slow', 'content-length': '100000' }, { endStream: false })
    stream.write(Buffer.alloc(10))
    const [headers] = (await once(stream, 'response')) as [IncomingHttpHeaders]
    expect(headers[':status']).toBe(408)
    stream.destroy()
    client.close()
  })
})

describe('HTTP/2 floods', () => {
  /** Another client, served throughout: 20 requests on its own connection, all answered. */
  async function bystander(): Promise<number[]> {
    const client = await session()
    const statuses: number[] = []
    for (let i = 0; i < 20; i++) statuses.push((await h2(client, { ':path': `/bystander/${i}` })).status)
    client.close()
    return statuses
  }

  it('ends a rapid-reset connection (node:http2 opening and cancelling streams) and keeps serving others', async () => {
    const ended = () => gateway.logs.some((line) => line.includes('HTTP/2 session ended'))
    expect(ended()).toBe(false)
    const attacker = await session()
    let opened = 0
    const flood = (async () => {
      // node:http2's client does not notice the server closing its socket under this load, so
      // the flood runs until the gateway says it ended the session (or 20,000 streams).
      while (!ended() && opened < 20_000) {
        for (let i = 0; i < 50; i++) {
          const stream = attacker.request({ ':path': `/reset/${opened++}` })
          stream.on('error', () => {})
          stream.close(constants.NGHTTP2_CANCEL)
        }
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
    })()
    const served = await bystander()
    await flood
    attacker.destroy()
    expect(served).toEqual(Array(20).fill(200))
    expect(ended()).toBe(true)
    // What the pipeline saw of the flood before the session ended: about the burst of resets.
    await waitFor(async () => (await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 1, route: 'all' }).catch(() => [])).length > 0, 'audit records')
    const records = await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 1000, route: 'all' })
    expect(records.filter((r) => r.path.startsWith('/reset/')).length).toBeLessThanOrEqual(H2_RESET_BURST + H2_MAX_CONCURRENT_STREAMS)
  })

  it('ends a CONTINUATION flood and keeps serving others', async () => {
    const raw = await rawH2(gateway.url, ca)
    raw.send(frame(FRAME.HEADERS, 0, 1, headerBlock(requestHeaders('/continued'))))
    const block = headerBlock([['x-flood', 'a'.repeat(100)]])
    const served = bystander()
    for (let i = 0; i < 10_000 && !raw.socket.destroyed; i++) raw.send(frame(FRAME.CONTINUATION, 0, 1, block))
    await raw.closed // ended by the server: nghttp2 takes at most 8 CONTINUATION frames (CVE-2024-27983)
    expect(await served).toEqual(Array(20).fill(200))
  })

  for (const kind of ['PING', 'SETTINGS'] as const) {
    it(`ends a ${kind} flood from a client that reads nothing, and keeps serving others`, async () => {
      const raw = await rawH2(gateway.url, ca, { read: false })
      const one = kind === 'PING' ? frame(FRAME.PING, 0, 0, Buffer.alloc(8)) : frame(FRAME.SETTINGS, 0, 0, Buffer.from([0, 4, 0, 1, 0, 0]))
      const served = bystander()
      const flood = Buffer.concat(Array.from({ length: 2_000 }, () => one))
      for (let i = 0; i < 50 && !raw.socket.destroyed; i++) {
        if (!raw.socket.write(flood)) await Promise.race([once(raw.socket, 'drain'), raw.closed])
      }
      raw.socket.resume()
      // Ended by the server: nghttp2 queues at most 1,000 acknowledgements for a peer that does not read.
      await raw.closed
      expect(await served).toEqual(Array(20).fill(200))
    })
  }
})
