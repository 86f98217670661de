// A POST's `_method` in its form body (helper "form"): Rails (Rack::MethodOverride reads it from an
// urlencoded or multipart body), Laravel and Symfony (HTML form method spoofing, $_POST), and
// Express's method-override with a body getter run a POST whose form body carries
// `_method=DELETE` as a DELETE. The gateway routed and authorized it as the POST it came as: a
// caller allowed POST and denied DELETE had the upstream run DELETE. The query case was fixed
// before (authz-method-override.test.ts); the body was not read. Now a form POST's body is read
// whole (bounded) before anything is forwarded, and its `_method` fields judged as the query's.
// The upstream is a real node:http server that reads the body's `_method` as Rack does (the form
// parsed by undici's FormData, urlencoded or multipart), recording the method each request ran as
// and the body's bytes.
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, METHODS, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { request } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Session, startH2Gateway } from '../helpers/h2-gateway.ts'
import { AUDIENCE } from '../helpers/identity-provider.ts'
import { rawPost, startOverrideGateway, startOverrideH2Gateway, type OverrideH2Gateway, type OverrideSetup } from '../helpers/method-override.ts'
import { rawRequest, type RawResponse } from '../helpers/raw.ts'

let setup: OverrideSetup
let gateway: TestGateway
let token: string
const ADMIN = 'authz-form-method-override-admin-0123456789'
const MAX_BODY = 4 * 1024 * 1024

interface Ran {
  /** `METHOD /path`, after the body's `_method`. */
  ran: string
  sha256: string
  bytes: number
}
const ran: Ran[] = []
/** The Content-Type each request reached the upstream with. */
const types: Array<string | undefined> = []

const sha256 = (body: Buffer | string) => createHash('sha256').update(body).digest('hex')

/** As Rack::MethodOverride: a form POST (urlencoded, multipart, or no Content-Type) runs as its body's `_method`, when that is a method. */
async function rackLike(req: IncomingMessage): Promise<Ran> {
  types.push(req.headers['content-type'])
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const body = Buffer.concat(chunks)
  let method = req.method ?? ''
  const type = req.headers['content-type'] || 'application/x-www-form-urlencoded'
  if (method === 'POST' && body.length > 0 && /^(application\/x-www-form-urlencoded|multipart\/)/i.test(type)) {
    const form = await new Request('http://upstream/', { method: 'POST', headers: { 'content-type': type }, body }).formData().catch(() => null)
    const named = form?.get('_method')
    if (typeof named === 'string' && METHODS.includes(named.toUpperCase())) method = named.toUpperCase()
  }
  return { ran: `${method} ${new URL(req.url ?? '/', 'http://upstream').pathname}`, sha256: sha256(body), bytes: body.length }
}

beforeAll(async () => {
  setup = await startOverrideGateway((req, res) => {
    void rackLike(req).then((done) => {
      ran.push(done)
      res.end(`${done.ran} ran`)
    })
  }, { id: 'forms', path: '/forms/*' }, (dir) => ({
    server: { max_body_bytes: MAX_BODY },
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  }))
  ;({ gateway, token } = setup)
})

afterAll(() => setup?.close())

beforeEach(() => {
  ran.length = 0
  types.length = 0
})

const port = () => Number(new URL(gateway.url).port)

/** A POST with this body (Content-Length, or chunked in two chunks), `headers` lines added. */
function post(target: string, body: Buffer | string, headers: string[] = [], chunked = false): Promise<RawResponse> {
  return rawPost(port(), token, target, Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1'), headers, chunked)
}

const URLENCODED = 'Content-Type: application/x-www-form-urlencoded'

function answer(res: RawResponse): { status: number; code?: string } {
  return res.headers['content-type'] === 'application/problem+json' ? { status: res.status, code: (JSON.parse(res.body) as { code: string }).code } : { status: res.status }
}

/** A multipart/form-data body: fields as [Content-Disposition parameters, value]. */
function multipart(boundary: string, parts: Array<[string, Buffer | string]>, dispositionName = 'Content-Disposition'): Buffer {
  const out: Buffer[] = []
  for (const [params, value] of parts) {
    out.push(Buffer.from(`--${boundary}\r\n${dispositionName}: form-data; ${params}\r\n\r\n`), Buffer.isBuffer(value) ? value : Buffer.from(value), Buffer.from('\r\n'))
  }
  out.push(Buffer.from(`--${boundary}--\r\n`))
  return Buffer.concat(out)
}

describe('a form POST whose body\'s _method names a method the policies deny', () => {
  it('urlencoded: refused 403 policy_denied, naming the field and the deny, and the upstream never runs DELETE', async () => {
    const res = await post('/records/42', 'title=x&_method=DELETE', [URLENCODED])
    expect(answer(res)).toEqual({ status: 403, code: 'policy_denied' })
    expect((JSON.parse(res.body) as { detail: string }).detail).toMatch(/form body has a _method field that asks for DELETE.*Statement "NeverDelete"/)
    expect(ran).toEqual([])
  })

  it('urlencoded, in every spelling a framework reads as _method, chunked too, and with an empty Content-Type (Rack reads that as a form)', async () => {
    for (const body of ['_method=delete', '%5Fmethod=DELETE', '.method=DELETE', '+_method=DELETE', '_METHOD=DELETE', '_method[]=DELETE', 'a=1;_method=DELETE', '_method=POST&_method=DELETE', '_method=%20DELETE']) {
      expect(answer(await post('/records/42', body, [URLENCODED])), body).toEqual({ status: 403, code: 'policy_denied' })
    }
    expect(answer(await post('/records/42', 'a=1&_method=DELETE', ['Content-Type: Application/X-WWW-Form-Urlencoded; charset=utf-8'], true))).toEqual({ status: 403, code: 'policy_denied' })
    expect(answer(await post('/records/42', '_method=DELETE', ['Content-Type: ']))).toEqual({ status: 403, code: 'policy_denied' })
    expect(ran).toEqual([])
  })

  it('multipart: a _method part, quoted or not, any case, after a large file part, chunked too', async () => {
    const file = randomBytes(1024 * 1024)
    const cases: Array<[string, Buffer, boolean]> = [
      ['b1', multipart('b1', [['name="title"', 'x'], ['name="_method"', 'DELETE']]), false],
      ['b2', multipart('b2', [['name=_method', 'delete']]), false],
      ['b3', multipart('b3', [['NAME="_method"', 'DELETE']], 'content-disposition'), false],
      ['b4', multipart('b4', [['name="upload"; filename="a.bin"', file], ['name="_method"', 'DELETE']]), false],
      ['b5', multipart('b5', [['name="upload"; filename="a.bin"', file], ['name="_method"', 'DELETE']]), true],
    ]
    for (const [boundary, body, chunked] of cases) {
      const res = await post('/records/42', body, [`Content-Type: multipart/form-data; boundary="${boundary}"`], chunked)
      expect(answer(res), boundary).toEqual({ status: 403, code: 'policy_denied' })
    }
    expect(ran).toEqual([])
  })

  it('the audit record says what the query case\'s says', async () => {
    const viaQuery = await post('/records/42?_method=DELETE', '', [URLENCODED])
    const viaForm = await post('/records/42', '_method=DELETE', [URLENCODED])
    const [query, form] = await Promise.all([viaQuery, viaForm].map((res) => waitForAuditRecord(join(gateway.dir, 'audit.db'), res.headers['x-request-id'] as string)))
    for (const record of [query, form]) {
      expect(record).toMatchObject({ method: 'POST', path: '/records/42', route: 'records', status: 403, decision: 'deny', code: 'policy_denied', statement: 'NeverDelete', roles: ['editor'] })
    }
    expect(form?.detail).toMatch(/form body has a _method field that asks for DELETE/)
    expect(query?.detail).toMatch(/_method parameter asks for DELETE/)
  })
})

describe('routed as the method it names', () => {
  it('a route that does not take it: 405; another route that takes it here: 400; no method: 400', async () => {
    expect(answer(await post('/forms/1', '_method=DELETE', [URLENCODED]))).toEqual({ status: 405, code: 'method_not_allowed' })
    const other = await post('/archive/1', multipart('zz', [['name="_method"', 'DELETE']]), ['Content-Type: multipart/form-data; boundary=zz'])
    expect(answer(other)).toEqual({ status: 400, code: 'bad_request' })
    expect((JSON.parse(other.body) as { detail: string }).detail).toContain('route "archive.delete"')
    expect(answer(await post('/records/42', '_method=DE%20LETE', [URLENCODED]))).toEqual({ status: 400, code: 'bad_request' })
    expect(ran).toEqual([])
  })
})

describe('what is refused before it is read', () => {
  it('a form body with Content-Encoding is read decoded too (body-parser inflates one): its _method DELETE refused 403', async () => {
    const res = await post('/records/42', gzipSync('_method=DELETE'), [URLENCODED, 'Content-Encoding: gzip'])
    expect(answer(res)).toEqual({ status: 403, code: 'policy_denied' })
    expect(ran).toEqual([])
  })

  it('a form body with two Content-Encoding fields: 400', async () => {
    const res = await post('/records/42', gzipSync('_method=DELETE'), [URLENCODED, 'Content-Encoding: gzip', 'Content-Encoding: gzip'])
    expect(answer(res)).toEqual({ status: 400, code: 'bad_request' })
    expect(ran).toEqual([])
  })

  it('a form cut short by its client: nothing forwarded, recorded with what arrived', async () => {
    const socket = connect(port(), '127.0.0.1')
    await once(socket, 'connect')
    // Expect: 100-continue, so that the body goes once the gateway reads it; then 40,000 of 100,000 bytes and FIN.
    socket.write(`POST /records/42 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nX-Request-Id: form-cut-short\r\n${URLENCODED}\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n`)
    await once(socket, 'data')
    socket.end('a=1&'.repeat(10_000))
    const record = await waitForAuditRecord(join(gateway.dir, 'audit.db'), 'form-cut-short')
    expect(record).toMatchObject({ status: 408, code: 'request_timeout', bytes_in: 40_000 })
    expect(ran).toEqual([])
  })

  it('a chunked form over max_body_bytes: 413, nothing forwarded', async () => {
    const res = await post('/records/42', Buffer.alloc(MAX_BODY + 1024, 'a'), [URLENCODED], true)
    expect(answer(res)).toEqual({ status: 413, code: 'payload_too_large' })
    expect(ran).toEqual([])
  })
})

describe('what stays allowed, byte for byte', () => {
  it('an allowed override runs as that method, its body as sent', async () => {
    const body = 'title=x&_method=PATCH'
    expect((await post('/records/42', body, [URLENCODED])).status).toBe(200)
    expect(ran).toEqual([{ ran: 'PATCH /records/42', sha256: sha256(body), bytes: body.length }])
  })

  it('a big form without _method, Content-Length and chunked', async () => {
    const body = `${Array.from({ length: 60_000 }, (_, i) => `field${i}=${'v'.repeat(40)}`).join('&')}&last=%5Fmethod`
    expect(body.length).toBeGreaterThan(2 * 1024 * 1024)
    expect((await post('/records/42', body, [URLENCODED])).status).toBe(200)
    expect((await post('/records/42', body, [URLENCODED], true)).status).toBe(200)
    expect(ran).toEqual([1, 2].map(() => ({ ran: 'POST /records/42', sha256: sha256(body), bytes: body.length })))
  })

  it('a file upload, and one with an allowed _method part', async () => {
    const file = randomBytes(3 * 1024 * 1024)
    const upload = multipart('----x', [['name="upload"; filename="a.bin"', file], ['name="title"', 'x']])
    const patch = multipart('----y', [['name="upload"; filename="a.bin"', file], ['name="_method"', 'PATCH']])
    expect((await post('/records/42', upload, ['Content-Type: multipart/form-data; boundary=----x'], true)).status).toBe(200)
    expect((await post('/records/42', patch, ['Content-Type: multipart/form-data; boundary=----y'])).status).toBe(200)
    expect(ran).toEqual([
      { ran: 'POST /records/42', sha256: sha256(upload), bytes: upload.length },
      { ran: 'PATCH /records/42', sha256: sha256(patch), bytes: patch.length },
    ])
  })

  it('a multipart body of Content-Disposition headers on one line is read in linear time: other requests are not held up', async () => {
    // The header finder backtracked over the rest of the line from each "content-disposition:" on it:
    // 400 KB of them held the event loop ~24 s (10 MB, max_body_bytes' default: hours), every request waiting.
    const body = Buffer.from(`--z\r\n${'content-disposition:'.repeat(20_000)}\r\n--z--\r\n`, 'latin1')
    const started = performance.now()
    const form = post('/records/42', body, ['Content-Type: multipart/form-data; boundary=z'])
    // A plain GET sent while the form is being read is answered at once.
    await new Promise((resolve) => setTimeout(resolve, 50))
    const other = await request(`${gateway.url}/forms/1`, { headers: { authorization: `Bearer ${token}` } })
    await other.body.dump()
    expect(other.statusCode).toBe(200)
    expect(performance.now() - started).toBeLessThan(1_500)
    expect((await form).status).toBe(200)
    expect(ran.map((r) => r.ran).sort()).toEqual(['GET /forms/1', 'POST /records/42'])
  }, 60_000)

  it('a JSON or octet-stream POST is not read as a form (JSON is read as JSON: authz-json-method-override.test.ts)', async () => {
    expect((await post('/forms/1', '_method=DELETE', ['Content-Type: application/json'])).status).toBe(200)
    expect((await post('/forms/1', '_method=DELETE', ['Content-Type: application/octet-stream'])).status).toBe(200)
    expect(ran.map((r) => r.ran)).toEqual(['POST /forms/1', 'POST /forms/1'])
  })

  it('a POST with no Content-Type streams on unread, declared application/octet-stream (Rack would read it as a form)', async () => {
    expect((await post('/forms/1', '_method=DELETE')).status).toBe(200)
    expect((await post('/forms/1', '_method=DELETE', [], true)).status).toBe(200)
    expect(ran.map((r) => r.ran)).toEqual(['POST /forms/1', 'POST /forms/1'])
    expect(types).toEqual(['application/octet-stream', 'application/octet-stream'])
  })

  it('Expect: 100-continue: the body is asked for, read, and judged', async () => {
    const body = '_method=DELETE'
    const res = await rawRequest(port(), [
      `POST /records/42 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\n${URLENCODED}\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      body,
    ], { gapMs: 100 })
    expect(res.raw.startsWith('HTTP/1.1 100 Continue')).toBe(true)
    expect(answer(res)).toEqual({ status: 403, code: 'policy_denied' })
    expect(ran).toEqual([])
  })
})

describe('HTTP/2', () => {
  let h2: OverrideH2Gateway
  beforeAll(async () => {
    h2 = await startOverrideH2Gateway(setup.upstreamUrl, { id: 'forms', path: '/forms/*' })
  })
  afterAll(() => h2?.close())
  const h2Post = (path: string, body: Buffer, type: string, length: boolean) => h2.post(path, body, type, length)

  it('a form body over HTTP/2 is read and judged; an allowed one passes byte for byte, with or without content-length', async () => {
    expect(await h2Post('/forms/1', Buffer.from('_method=DELETE'), 'application/x-www-form-urlencoded', true)).toBe(405)
    expect(await h2Post('/forms/1', multipart('h2', [['name="_method"', 'DELETE']]), 'multipart/form-data; boundary=h2', false)).toBe(405)
    expect(ran).toEqual([])
    const upload = multipart('h2-0123456789', [['name="upload"; filename="a.bin"', randomBytes(1024 * 1024)], ['name="_method"', 'PUT']])
    expect(await h2Post('/records/1', upload, 'multipart/form-data; boundary=h2-0123456789', false)).toBe(200)
    expect(await h2Post('/records/1', upload, 'multipart/form-data; boundary=h2-0123456789', true)).toBe(200)
    expect(ran).toEqual([1, 2].map(() => ({ ran: 'PUT /records/1', sha256: sha256(upload), bytes: upload.length })))
  })
})

describe('an upstream with retries', () => {
  let retrying: TestGateway
  let retryingH2: TestGateway
  let pki: TestPki
  beforeAll(async () => {
    const dead = createServer()
    dead.listen(0, '127.0.0.1')
    await once(dead, 'listening')
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`
    dead.close()
    await once(dead, 'close')
    retrying = await startTestGateway({
      upstreams: [{ name: 'app', targets: [deadUrl, setup.upstreamUrl], balance: 'round_robin', retries: { attempts: 2, on: ['connect_failure'], budget: '100%' } }],
      routes: [{ id: 'records', path: '/records/*', upstream: 'app', public: true }],
    })
    pki = createPki()
    retryingH2 = await startH2Gateway(pki, deadUrl, {}, {
      upstreams: [{ name: 'app', targets: [deadUrl, setup.upstreamUrl], balance: 'round_robin', retries: { attempts: 2, on: ['connect_failure'], budget: '100%' } }],
      routes: [{ id: 'records', path: '/records/*', upstream: 'app', public: true }],
    })
  })
  afterAll(async () => {
    await retrying?.close()
    await retryingH2?.close()
    pki?.close()
  })

  // An HTTP/2 body without content-length is whole only at its stream's end, which the form's read
  // put back in front of: it is sent again all the same (a review suspected not). A POST follows no
  // other failure than connect_failure (not idempotent), so no other retry reads it held.
  it('over HTTP/2 without content-length too', async () => {
    const small = 'title=x&_method=PATCH'
    const large = `${'a=1&'.repeat(40_000)}_method=PUT`
    for (const body of [small, small, large, large]) {
      const client = await h2Session(retryingH2.url, readFileSync(pki.ca.cert))
      const stream = client.request({ ':method': 'POST', ':path': '/records/1', 'content-type': 'application/x-www-form-urlencoded' })
      stream.end(body)
      stream.resume()
      const [headers] = await once(stream, 'response') as [Record<string, string>]
      await once(stream, 'close')
      client.close()
      expect(Number(headers[':status']), `${body.length}`).toBe(200)
    }
    expect(ran).toEqual([small, small, large, large].map((body) => ({ ran: `${body === small ? 'PATCH' : 'PUT'} /records/1`, sha256: sha256(body), bytes: body.length })))
  })

  it('a form read for its _method is sent again whole after a failed connection, small or large', async () => {
    const small = 'title=x&_method=PATCH'
    const large = `${'a=1&'.repeat(40_000)}_method=PUT`
    for (const body of [small, small, large, large]) {
      const res = await rawRequest(Number(new URL(retrying.url).port), `POST /records/1 HTTP/1.1\r\nHost: gw\r\n${URLENCODED}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
      expect(res.status, `${body.length}: ${res.body}`).toBe(200)
    }
    expect(ran).toEqual([small, small, large, large].map((body) => ({ ran: `${body === small ? 'PATCH' : 'PUT'} /records/1`, sha256: sha256(body), bytes: body.length })))
  })
})

describe('a function route', () => {
  let functions: TestGateway
  beforeAll(async () => {
    functions = await startTestGateway({
      functions: [{ name: 'echo', module: fileURLToPath(new URL('../fixtures/functions/echo.ts', import.meta.url)) }],
      routes: [{ id: 'fn', methods: ['POST', 'PATCH'], path: '/fn', function: 'echo', public: true }],
    })
  })
  afterAll(async () => {
    await functions?.close()
  })

  it('gets the form it was sent, read first for its _method (Bref runs Laravel there)', async () => {
    const send = (body: string) => rawRequest(Number(new URL(functions.url).port), `POST /fn HTTP/1.1\r\nHost: gw\r\n${URLENCODED}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
    expect(answer(await send('title=x&_method=DELETE'))).toEqual({ status: 405, code: 'method_not_allowed' })
    const body = `title=${'x'.repeat(100_000)}&_method=PATCH`
    const res = await send(body)
    expect(res.status).toBe(200)
    const { event } = JSON.parse(res.body) as { event: { body: string; isBase64Encoded: boolean } }
    expect(event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('latin1') : event.body).toBe(body)
  })
})

describe('explain agrees with the gateway', () => {
  it('POST /api/explain with a form body decides the POST as the method its _method names', async () => {
    const explain = async (path: string, form: string) => {
      const res = await request(`${gateway.adminUrl}/api/explain`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ method: 'POST', path, token, form }) })
      return ((await res.body.json()) as { decision: Record<string, unknown> }).decision
    }
    expect(await explain('/records/42', 'a=1&_method=DELETE')).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied', statement: 'NeverDelete' })
    expect(await explain('/forms/1', '_method=DELETE')).toMatchObject({ effect: 'deny', status: 405, code: 'method_not_allowed' })
    expect(await explain('/archive/1', '_method=DELETE')).toMatchObject({ effect: 'deny', status: 400, code: 'bad_request' })
    expect(await explain('/records/42', '_method=PATCH')).toMatchObject({ effect: 'allow', status: 200 })
  })

  it('bouncer explain --form says the same offline', async () => {
    const cli = (form: string) => runCliInProcess(['explain', '--config', gateway.file, '--method', 'POST', '--path', '/records/42', '--claims', JSON.stringify({ iss: setup.issuer, aud: AUDIENCE, sub: 'looker-reports' }), '--form', form, '--json'])
    const denied = await cli('title=x&_method=DELETE')
    expect(denied.code).toBe(1)
    expect((JSON.parse(denied.stdout) as { decision: unknown }).decision).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied', statement: 'NeverDelete' })
    expect((await cli('title=x&_method=PATCH')).code).toBe(0)
  })
})
