// A POST's `_method` in its JSON body: Laravel makes a JSON request's decoded body its request bag
// (Request::createFromBase) and Symfony's getMethod() reads `_method` from it, so
// `POST /records/42` with `{"_method":"DELETE"}` runs as a DELETE; Express's method-override with a
// body getter does the same over express.json(). The gateway read the query's and a form's
// `_method` (authz-method-override.test.ts, authz-form-method-override.test.ts), not a JSON body's:
// a caller allowed POST and denied DELETE had the upstream run DELETE. Now a JSON POST's body is
// read whole (bounded, as a form's) and its top-level `_method` judged as a form's is.
// The upstream is a real node:http server that reads the body as Laravel does (isJson: the
// Content-Type contains `/json` or `+json`; a top-level string `_method`, the last of duplicates),
// recording the method each request ran as and the body's bytes.
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, METHODS, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import express from 'express'
import { request } from 'undici'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE } from '../helpers/identity-provider.ts'
import { rawPost, startOverrideGateway, startOverrideH2Gateway, type OverrideH2Gateway, type OverrideSetup } from '../helpers/method-override.ts'
import { rawRequest, type RawResponse } from '../helpers/raw.ts'

let setup: OverrideSetup
let gateway: TestGateway
let token: string
const ADMIN = 'authz-json-method-override-admin-0123456789'
const MAX_BODY = 4 * 1024 * 1024

interface Ran {
  /** `METHOD /path`, after the body's `_method`. */
  ran: string
  sha256: string
  bytes: number
}
const ran: Ran[] = []

const sha256 = (body: Buffer | string) => createHash('sha256').update(body).digest('hex')

/** As Laravel: a JSON POST (isJson) runs as its decoded body's top-level `_method`, when that is a string naming a method; a body json_decode refuses names none. */
async function laravelLike(req: IncomingMessage): Promise<Ran> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const body = Buffer.concat(chunks)
  let method = req.method ?? ''
  const type = req.headers['content-type'] ?? ''
  if (method === 'POST' && (type.includes('/json') || type.includes('+json'))) {
    let decoded: unknown
    try {
      decoded = JSON.parse(body.toString('utf8'))
    } catch {
      decoded = null // json_decode: null, an empty bag
    }
    const named = decoded !== null && typeof decoded === 'object' && !Array.isArray(decoded) ? (decoded as Record<string, unknown>)._method : undefined
    if (typeof named === 'string' && METHODS.includes(named.toUpperCase())) method = named.toUpperCase()
  }
  return { ran: `${method} ${new URL(req.url ?? '/', 'http://upstream').pathname}`, sha256: sha256(body), bytes: body.length }
}

beforeAll(async () => {
  setup = await startOverrideGateway((req, res) => {
    void laravelLike(req).then((done) => {
      ran.push(done)
      res.end(`${done.ran} ran`)
    })
  }, { id: 'items', path: '/items/*' }, (dir) => ({
    server: { max_body_bytes: MAX_BODY },
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
  }))
  ;({ gateway, token } = setup)
})

afterAll(() => setup?.close())

beforeEach(() => {
  ran.length = 0
})

const port = () => Number(new URL(gateway.url).port)

/** A POST with this body (Content-Length, or chunked in two chunks), `headers` lines added. */
function post(target: string, body: Buffer | string, headers: string[] = [JSON_TYPE], chunked = false): Promise<RawResponse> {
  return rawPost(port(), token, target, Buffer.isBuffer(body) ? body : Buffer.from(body), headers, chunked)
}

const JSON_TYPE = 'Content-Type: application/json'

function answer(res: RawResponse): { status: number; code?: string } {
  return res.headers['content-type'] === 'application/problem+json' ? { status: res.status, code: (JSON.parse(res.body) as { code: string }).code } : { status: res.status }
}

const detail = (res: RawResponse) => (JSON.parse(res.body) as { detail: string }).detail

describe('a JSON POST whose top-level _method names a method the policies deny', () => {
  it('refused 403 policy_denied, naming the JSON body and the deny, and the upstream never runs DELETE', async () => {
    const res = await post('/records/42', '{"title":"x","_method":"DELETE"}')
    expect(answer(res)).toEqual({ status: 403, code: 'policy_denied' })
    expect(detail(res)).toMatch(/JSON body has a top-level _method that asks for DELETE.*Statement "NeverDelete"/)
    expect(ran).toEqual([])
  })

  it('in every JSON Content-Type Laravel reads (any case, parameters, +json, chunked), escaped, last of duplicates, lower-case', async () => {
    const cases: Array<[string, string, boolean]> = [
      ['Content-Type: Application/JSON; charset=utf-8', '{"_method":"DELETE"}', false],
      ['Content-Type: application/merge-patch+json', '{"_method":"delete"}', false],
      ['Content-Type: application/vnd.api+json', '{"\\u005fmethod":"DELETE"}', true],
      [JSON_TYPE, '{"_method":"PATCH","title":"x","_method":"DELETE"}', false],
      [JSON_TYPE, `{"big":"${'x'.repeat(1024 * 1024)}","_method":"DELETE"}`, true],
      // Laravel's isJson reads the whole header: a multipart boundary of "+json" makes the body JSON to it.
      ['Content-Type: multipart/form-data; boundary=+json', '{"_method":"DELETE"}', false],
    ]
    for (const [type, body, chunked] of cases) {
      expect(answer(await post('/records/42', body, [type], chunked)), `${type} ${body.slice(0, 60)}`).toEqual({ status: 403, code: 'policy_denied' })
    }
    expect(ran).toEqual([])
  })

  it('the audit record says what the form case\'s says, naming the JSON body', async () => {
    const res = await post('/records/42', '{"_method":"DELETE"}')
    const record = await waitForAuditRecord(join(gateway.dir, 'audit.db'), res.headers['x-request-id'] as string)
    expect(record).toMatchObject({ method: 'POST', path: '/records/42', route: 'records', status: 403, decision: 'deny', code: 'policy_denied', statement: 'NeverDelete', roles: ['editor'] })
    expect(record?.detail).toMatch(/JSON body has a top-level _method that asks for DELETE/)
  })
})

describe('routed as the method it names', () => {
  it('a route that does not take it: 405; another route that takes it here: 400; no method: 400', async () => {
    const notTaken = await post('/items/1', '{"_method":"DELETE"}')
    expect(answer(notTaken)).toEqual({ status: 405, code: 'method_not_allowed' })
    expect(detail(notTaken)).toMatch(/JSON body has a top-level _method that asks for DELETE/)
    const other = await post('/archive/1', '{"_method":"DELETE"}')
    expect(answer(other)).toEqual({ status: 400, code: 'bad_request' })
    expect(detail(other)).toContain('route "archive.delete"')
    expect(answer(await post('/records/42', '{"_method":"DE LETE"}'))).toEqual({ status: 400, code: 'bad_request' })
    expect(ran).toEqual([])
  })
})

describe('what is refused before it is read', () => {
  it('a JSON body with more than one Content-Encoding, or in a charset body-parser decodes first: 400', async () => {
    const twice = await post('/records/42', gzipSync(gzipSync('{"_method":"DELETE"}')), [JSON_TYPE, 'Content-Encoding: gzip, gzip'])
    expect(answer(twice)).toEqual({ status: 400, code: 'bad_request' })
    expect(detail(twice)).toMatch(/A JSON body is not accepted with more than one Content-Encoding/)
    const utf16 = await post('/records/42', Buffer.from('{"_method":"DELETE"}', 'utf16le'), ['Content-Type: application/json; charset=utf-16le'])
    expect(answer(utf16)).toEqual({ status: 400, code: 'bad_request' })
    expect(ran).toEqual([])
  })

  it('a JSON body that inflates past max_body_bytes: 413, nothing forwarded', async () => {
    const bomb = gzipSync(`{"a":"${'a'.repeat(MAX_BODY)}","_method":"DELETE"}`)
    expect(bomb.length).toBeLessThan(MAX_BODY / 100)
    const res = await post('/records/42', bomb, [JSON_TYPE, 'Content-Encoding: gzip'])
    expect(answer(res)).toEqual({ status: 413, code: 'payload_too_large' })
    expect(detail(res)).toMatch(/decoded from its Content-Encoding "gzip", is over server.max_body_bytes/)
    expect(ran).toEqual([])
  })

  it('a chunked JSON body over max_body_bytes: 413, nothing forwarded', async () => {
    const res = await post('/records/42', `{"a":"${'a'.repeat(MAX_BODY)}"}`, [JSON_TYPE], true)
    expect(answer(res)).toEqual({ status: 413, code: 'payload_too_large' })
    expect(ran).toEqual([])
  })
})

describe('a JSON body with a Content-Encoding: read as it came (Laravel) and decoded (body-parser)', () => {
  it.each([
    ['gzip', gzipSync('{"title":"x","_method":"DELETE"}')],
    ['deflate', deflateSync('{"title":"x","_method":"DELETE"}')],
    ['br', brotliCompressSync('{"title":"x","_method":"DELETE"}')],
    ['X-GZIP', gzipSync('{"title":"x","_method":"DELETE"}')],
    // Laravel reads the bytes whatever the coding says: a coding nobody decodes over plain JSON.
    ['x-unknown', Buffer.from('{"title":"x","_method":"DELETE"}')],
  ])('%s: a _method DELETE is refused 403, the upstream never reached', async (coding, body) => {
    const res = await post('/records/42', body, [JSON_TYPE, `Content-Encoding: ${coding}`])
    expect(answer(res)).toEqual({ status: 403, code: 'policy_denied' })
    expect(detail(res)).toMatch(/JSON body has a top-level _method that asks for DELETE/)
    expect(ran).toEqual([])
  })

  it('an allowed one, or bytes that do not decode, reach the upstream as sent', async () => {
    const patch = gzipSync('{"_method":"PATCH"}')
    expect((await post('/records/42', patch, [JSON_TYPE, 'Content-Encoding: gzip'])).status).toBe(200)
    const broken = Buffer.concat([gzipSync('{"_method":"DELETE"}').subarray(0, 12), Buffer.from('not the rest')])
    expect((await post('/records/42', broken, [JSON_TYPE, 'Content-Encoding: gzip'])).status).toBe(200)
    // The Laravel-like upstream reads the bytes as they came: neither names a method it can read.
    expect(ran).toEqual([
      { ran: 'POST /records/42', sha256: sha256(patch), bytes: patch.length },
      { ran: 'POST /records/42', sha256: sha256(broken), bytes: broken.length },
    ])
  })
})

describe('what stays allowed, byte for byte', () => {
  it('an allowed override runs as that method, its body as sent', async () => {
    const body = '{"title":"x","_method":"PATCH"}'
    expect((await post('/records/42', body)).status).toBe(200)
    expect(ran).toEqual([{ ran: 'PATCH /records/42', sha256: sha256(body), bytes: body.length }])
  })

  it('a big JSON body without _method, Content-Length and chunked, non-ASCII bytes too', async () => {
    const body = JSON.stringify({ items: Array.from({ length: 30_000 }, (_, i) => ({ id: i, name: `é ${i} "quoted" {[`, tags: ['a', 'b'], nested: { _method: 'DELETE' } })) })
    expect(body.length).toBeGreaterThan(2 * 1024 * 1024)
    expect((await post('/items/1', body)).status).toBe(200)
    expect((await post('/items/1', body, [JSON_TYPE], true)).status).toBe(200)
    const bytes = Buffer.byteLength(body)
    expect(ran).toEqual([1, 2].map(() => ({ ran: 'POST /items/1', sha256: sha256(body), bytes })))
  })

  it('no _method, a nested one, one in an array body, one in a string: a POST, as the upstream runs it', async () => {
    const bodies = ['{"title":"x"}', '{"data":{"_method":"DELETE"}}', '[{"_method":"DELETE"}]', '{"note":"{\\"_method\\":\\"DELETE\\"}"}', '{"_method":"POST"}', '{"_method":null}']
    for (const body of bodies) expect((await post('/items/1', body)).status, body).toBe(200)
    expect(ran).toEqual(bodies.map((body) => ({ ran: 'POST /items/1', sha256: sha256(body), bytes: body.length })))
  })

  it('duplicate keys: the last one is the method, for the gateway as for the upstream', async () => {
    const body = '{"_method":"DELETE","_method":"PATCH"}'
    expect((await post('/records/42', body)).status).toBe(200)
    expect(ran).toEqual([{ ran: 'PATCH /records/42', sha256: sha256(body), bytes: body.length }])
  })

  it('a body that is not JSON: what no upstream parser takes is forwarded undecided by it, unless it reads as naming a method', async () => {
    // Truncated, without a _method: forwarded as it came (json_decode gives null: Laravel runs a POST).
    expect((await post('/records/42', '{"title":"x",')).status).toBe(200)
    // Read as far as it goes: a _method there is judged all the same (refusing more, never less).
    expect(answer(await post('/records/42', '{"_method":"DELETE",}'))).toEqual({ status: 403, code: 'policy_denied' })
    expect(ran.map((r) => r.ran)).toEqual(['POST /records/42'])
  })

  it('a non-JSON Content-Type is not read as JSON', async () => {
    for (const type of ['Content-Type: text/plain', 'Content-Type: application/octet-stream']) {
      expect((await post('/items/1', '{"_method":"DELETE"}', [type])).status, type).toBe(200)
    }
    expect(ran.map((r) => r.ran)).toEqual(['POST /items/1', 'POST /items/1'])
  })

  it('Expect: 100-continue: the body is asked for, read, and judged', async () => {
    const body = '{"_method":"DELETE"}'
    const res = await rawRequest(port(), [
      `POST /records/42 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\n${JSON_TYPE}\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
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
    h2 = await startOverrideH2Gateway(setup.upstreamUrl, { id: 'items', path: '/items/*' })
  })
  afterAll(() => h2?.close())
  const h2Post = (path: string, body: string, length: boolean) => h2.post(path, Buffer.from(body), 'application/json', length)

  it('a JSON body over HTTP/2 is read and judged; an allowed one passes byte for byte, with or without content-length', async () => {
    expect(await h2Post('/items/1', '{"_method":"DELETE"}', true)).toBe(405)
    expect(await h2Post('/items/1', '{"_method":"DELETE"}', false)).toBe(405)
    expect(ran).toEqual([])
    const body = `{"blob":"${'y'.repeat(512 * 1024)}","_method":"PUT"}`
    expect(await h2Post('/records/1', body, false)).toBe(200)
    expect(await h2Post('/records/1', body, true)).toBe(200)
    expect(ran).toEqual([1, 2].map(() => ({ ran: 'PUT /records/1', sha256: sha256(body), bytes: body.length })))
  })
})

describe('an upstream with retries', () => {
  let retrying: TestGateway
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
  })
  afterAll(async () => {
    await retrying?.close()
  })

  it('a JSON body read for its _method is sent again whole after a failed connection, small or large', async () => {
    const small = '{"title":"x","_method":"PATCH"}'
    const large = `{"rows":[${'{"a":1},'.repeat(40_000)}{"a":2}],"_method":"PUT"}`
    for (const body of [small, small, large, large]) {
      const res = await rawRequest(Number(new URL(retrying.url).port), `POST /records/1 HTTP/1.1\r\nHost: gw\r\n${JSON_TYPE}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
      expect(res.status, `${body.length}: ${res.body}`).toBe(200)
    }
    expect(ran).toEqual([small, small, large, large].map((body) => ({ ran: `${body === small ? 'PATCH' : 'PUT'} /records/1`, sha256: sha256(body), bytes: body.length })))
  })
})

describe('an Express upstream: express.json() and method-override\'s body getter', () => {
  let api: Server
  let fronted: TestGateway
  const expressRan: string[] = []
  beforeAll(async () => {
    const app = express()
    app.use(express.json({ type: ['application/json', 'application/*+json'] }))
    // method-override's documented getter (its array reading: the first element), and the method it sets.
    app.use((req, _res, next) => {
      const body = req.body as unknown
      const named = body !== null && typeof body === 'object' && '_method' in body ? (body as { _method: unknown })._method : undefined
      const method = Array.isArray(named) ? (named[0] as unknown) : named
      if (typeof method === 'string' && METHODS.includes(method.toUpperCase())) req.method = method.toUpperCase()
      next()
    })
    app.use((req, res) => {
      expressRan.push(`${req.method} ${req.path}`)
      res.end('ran')
    })
    api = createServer(app)
    api.listen(0, '127.0.0.1')
    await once(api, 'listening')
    fronted = await startTestGateway({
      upstreams: [{ name: 'api', url: `http://127.0.0.1:${(api.address() as AddressInfo).port}` }],
      routes: [{ id: 'items', methods: ['GET', 'POST', 'PATCH'], path: '/items/*', upstream: 'api', public: true }],
    })
  })
  afterAll(async () => {
    await fronted?.close()
    api?.close()
  })

  const send = (body: Buffer | string, type = 'application/json') => {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body)
    return rawRequest(Number(new URL(fronted.url).port), Buffer.concat([Buffer.from(`POST /items/1 HTTP/1.1\r\nHost: gw\r\nContent-Type: ${type}\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n\r\n`), bytes]))
  }

  it('reads what body-parser reads: behind a byte order mark, an array\'s first string, a +json type; and runs what the gateway allowed', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf])
    expect(answer(await send(Buffer.concat([bom, Buffer.from('{"_method":"DELETE"}')])))).toEqual({ status: 405, code: 'method_not_allowed' })
    expect(answer(await send('{"_method":["DELETE"]}'))).toEqual({ status: 405, code: 'method_not_allowed' })
    expect(answer(await send('{"_method":"DELETE"}', 'application/vnd.api+json'))).toEqual({ status: 405, code: 'method_not_allowed' })
    expect(expressRan).toEqual([])
    expect((await send(Buffer.concat([bom, Buffer.from('{"_method":"PATCH"}')]))).status).toBe(200)
    expect((await send('{"_method":["patch"]}')).status).toBe(200)
    expect((await send('{"_method":"DELETE","_method":"PATCH"}')).status).toBe(200)
    expect((await send('{"data":{"_method":"DELETE"}}')).status).toBe(200)
    expect(expressRan).toEqual(['PATCH /items/1', 'PATCH /items/1', 'PATCH /items/1', 'POST /items/1'])
  })

  it('reads a gzip body as body-parser inflates it: DELETE refused, PATCH run as PATCH', async () => {
    const gzipped = (body: string) => rawRequest(Number(new URL(fronted.url).port), Buffer.concat([Buffer.from(`POST /items/1 HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${gzipSync(body).length}\r\nConnection: close\r\n\r\n`), gzipSync(body)]))
    expressRan.length = 0
    expect(answer(await gzipped('{"_method":"DELETE"}'))).toEqual({ status: 405, code: 'method_not_allowed' })
    expect(expressRan).toEqual([])
    expect((await gzipped('{"_method":"PATCH"}')).status).toBe(200)
    expect(expressRan).toEqual(['PATCH /items/1'])
  })
})

describe('explain agrees with the gateway', () => {
  it('POST /api/explain with a JSON body decides the POST as the method its _method names', async () => {
    const explain = async (path: string, json: string) => {
      const res = await request(`${gateway.adminUrl}/api/explain`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ method: 'POST', path, token, json }) })
      return ((await res.body.json()) as { decision: Record<string, unknown> }).decision
    }
    const denied = await explain('/records/42', '{"title":"x","_method":"DELETE"}')
    expect(denied).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied', statement: 'NeverDelete' })
    expect(denied.reason).toMatch(/JSON body has a top-level _method that asks for DELETE/)
    expect(await explain('/items/1', '{"_method":"DELETE"}')).toMatchObject({ effect: 'deny', status: 405, code: 'method_not_allowed' })
    expect(await explain('/archive/1', '{"_method":"DELETE"}')).toMatchObject({ effect: 'deny', status: 400, code: 'bad_request' })
    expect(await explain('/records/42', '{"_method":"PATCH"}')).toMatchObject({ effect: 'allow', status: 200 })
    expect(await explain('/records/42', '{"_method":"DELETE","_method":"PATCH"}')).toMatchObject({ effect: 'allow', status: 200 })
    expect(await explain('/records/42', '{"data":{"_method":"DELETE"}}')).toMatchObject({ effect: 'allow', status: 200 })
    const bad = await request(`${gateway.adminUrl}/api/explain`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ method: 'POST', path: '/records/42', token, json: { _method: 'DELETE' } }) })
    expect(bad.statusCode).toBe(400)
    await bad.body.dump()
  })

  it('bouncer explain --json-body says the same offline', async () => {
    const cli = (json: string) => runCliInProcess(['explain', '--config', gateway.file, '--method', 'POST', '--path', '/records/42', '--claims', JSON.stringify({ iss: setup.issuer, aud: AUDIENCE, sub: 'looker-reports' }), '--json-body', json, '--json'])
    const denied = await cli('{"title":"x","_method":"DELETE"}')
    expect(denied.code).toBe(1)
    expect((JSON.parse(denied.stdout) as { decision: unknown }).decision).toMatchObject({ effect: 'deny', status: 403, code: 'policy_denied', statement: 'NeverDelete' })
    expect((await cli('{"title":"x","_method":"PATCH"}')).code).toBe(0)
  })
})
