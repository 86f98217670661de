// Functions answer like Lambda handlers behind an HTTP API: the event is API Gateway's payload format
// 2.0 (compared with the shape of AWS's documented example), the verified claims and the roles are
// under requestContext.authorizer, the Lambda context carries the gateway's request id, and the
// response follows AWS's format 2.0 rules (inferred JSON, structured responses, cookies, base64).
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { waitFor } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))

let idp: TestIdentityProvider
let gw: TestGateway

beforeAll(async () => {
  // What the gateway's environment holds must not reach a handler (the embedded store's key, a secret).
  process.env.BOUNCER_SECRET_FN_TEST = 'never-in-a-function'
  idp = await startIdentityProvider()
  gw = await startTestGateway({
    server: { hosts: ['api.example.com'] },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [
      { name: 'reporter', assumed_by: [{ issuer: 'corp', claims: { groups: 'finance' } }], policies: ['all'] },
      { name: 'auditor', assumed_by: [{ issuer: 'corp', subject: 'svc-*' }], policies: ['all'] },
    ],
    policies: [{ name: 'all', statements: [{ sid: 'All', effect: 'allow', actions: ['*'], routes: ['*'] }] }],
    functions: [
      { name: 'echo', module: join(FIXTURES, 'echo.ts'), environment: { REPORT_BUCKET: 'reports-eu' } },
      { name: 'infer', module: join(FIXTURES, 'infer.js'), concurrency: 1 },
      { name: 'binary', module: join(FIXTURES, 'binary.cjs'), concurrency: 1 },
    ],
    routes: [
      { id: 'reports.refresh', methods: ['POST'], path: '/reports/:id/refresh/*', function: 'echo' },
      { id: 'echo.public', path: '/public/echo', function: 'echo', public: true },
      { id: 'infer', path: '/infer', function: 'infer', public: true },
      { id: 'binary', methods: ['POST'], path: '/binary', function: 'binary', public: true },
    ],
    audit: { sinks: [{ type: 'sqlite', path: './audit.db' }], spill_dir: './spill', flush_interval: '50ms' },
  })
})

afterAll(async () => {
  await gw?.close()
  await idp?.stop()
})

interface Echoed {
  event: Record<string, unknown> & { requestContext: Record<string, unknown> & { authorizer?: Record<string, unknown> } }
  context: { awsRequestId: string; functionName: string; functionVersion: string; memoryLimitInMB: string; remainingMs: number }
  env: Record<string, string>
}

/**
 * The example event of AWS's documentation ("Working with AWS Lambda proxy integrations for HTTP
 * APIs", format 2.0), reduced to its keys, in its order, and the JSON type of each value. `{ '*': T }`
 * is a map of names to T.
 */
const AWS_EXAMPLE_SHAPE = {
  version: 'string',
  routeKey: 'string',
  rawPath: 'string',
  rawQueryString: 'string',
  cookies: ['string'],
  headers: { '*': 'string' },
  queryStringParameters: { '*': 'string' },
  requestContext: {
    accountId: 'string',
    apiId: 'string',
    authentication: { clientCert: { clientCertPem: 'string', subjectDN: 'string', issuerDN: 'string', serialNumber: 'string', validity: { notBefore: 'string', notAfter: 'string' } } },
    authorizer: { jwt: { claims: { '*': 'string' }, scopes: ['string'] }, lambda: { '*': 'string' } },
    domainName: 'string',
    domainPrefix: 'string',
    http: { method: 'string', path: 'string', protocol: 'string', sourceIp: 'string', userAgent: 'string' },
    requestId: 'string',
    routeKey: 'string',
    stage: 'string',
    time: 'string',
    timeEpoch: 'number',
  },
  body: 'string',
  pathParameters: { '*': 'string' },
  isBase64Encoded: 'boolean',
  stageVariables: { '*': 'string' },
} as const

/** Where an event may differ from the example: what AWS itself leaves out when it does not apply. */
const ABSENT_HERE = new Set([
  'requestContext.authentication', // mutual TLS: no client certificate on this request
  'requestContext.authorizer.lambda', // a Lambda authorizer's context: the identity is a JWT here
  'stageVariables', // API Gateway stages: none
])
/** What the gateway adds to the example, and only there. */
const ADDED_HERE = new Set(['requestContext.authorizer.bouncer'])

type Shape = string | readonly Shape[] | { readonly [key: string]: Shape }

function shapeMismatches(value: unknown, shape: Shape, path: string): string[] {
  if (typeof shape === 'string') return typeof value === shape ? [] : [`${path}: ${typeof value}, not ${shape}`]
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return [`${path}: not an array`]
    return value.flatMap((item, i) => shapeMismatches(item, shape[0] as Shape, `${path}[${i}]`))
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${path}: not an object`]
  const record = value as Record<string, unknown>
  const fields = shape as { readonly [key: string]: Shape }
  if ('*' in fields) return Object.entries(record).flatMap(([key, item]) => shapeMismatches(item, fields['*'] as Shape, `${path}.${key}`))
  const out: string[] = []
  const at = (key: string) => (path === '' ? key : `${path}.${key}`)
  for (const key of Object.keys(record)) if (!(key in fields) && !ADDED_HERE.has(at(key))) out.push(`${at(key)}: not in AWS's event`)
  for (const [key, field] of Object.entries(fields)) {
    if (!(key in record)) {
      if (!ABSENT_HERE.has(at(key))) out.push(`${at(key)}: missing`)
      continue
    }
    out.push(...shapeMismatches(record[key], field, at(key)))
  }
  return out
}

describe('a function as a route target', () => {
  it('gets the payload 2.0 event of AWS, field for field, with the claims and roles of the caller', async () => {
    const token = await idp.mint({ sub: 'svc-finance', groups: ['finance', 'ops'], scope: 'reports:read reports:write', tenant: 'acme', email_verified: true, nested: { region: 'eu' }, gone: null })
    const res = await request(`${gw.url}/reports/r%2042/refresh/daily/eu?x=1&x=2&q=a%20b`, {
      method: 'POST',
      headers: [
        'authorization', `Bearer ${token}`, 'host', 'api.example.com', 'x-request-id', 'fn-echo-1',
        'x-custom', 'one', 'x-custom', 'two', 'cookie', 'session=abc; theme=dark', 'content-type', 'application/json',
      ],
      body: '{"refresh":"now"}',
    })
    expect(res.statusCode).toBe(200)
    expect(res.headers['x-echo']).toBe('yes')
    expect(res.headers['set-cookie']).toEqual(['seen=1; Path=/', 'flavour=oat'])
    expect(res.headers['x-request-id']).toBe('fn-echo-1')
    const { event, context, env } = (await res.body.json()) as Echoed

    expect(shapeMismatches(event, AWS_EXAMPLE_SHAPE, '')).toEqual([])
    expect(Object.keys(event)).toEqual(Object.keys(AWS_EXAMPLE_SHAPE).filter((key) => key in event))
    expect(Object.keys(event.requestContext)).toEqual(Object.keys(AWS_EXAMPLE_SHAPE.requestContext).filter((key) => key in event.requestContext))

    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'POST /reports/{id}/refresh/{proxy+}',
      rawPath: '/reports/r%2042/refresh/daily/eu',
      rawQueryString: 'x=1&x=2&q=a%20b',
      cookies: ['session=abc', 'theme=dark'],
      queryStringParameters: { x: '1,2', q: 'a b' },
      pathParameters: { id: 'r 42', proxy: 'daily/eu' },
      body: '{"refresh":"now"}',
      isBase64Encoded: false,
    })
    const headers = event.headers as Record<string, string>
    expect(headers).toMatchObject({ 'x-custom': 'one,two', 'content-type': 'application/json', host: 'api.example.com', 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-request-id': 'fn-echo-1' })
    expect(headers.authorization).toBeUndefined() // never handed on without forward_authorization
    expect(headers.cookie).toBeUndefined() // in `cookies` instead, as AWS does
    expect(Object.keys(headers).every((name) => name === name.toLowerCase())).toBe(true)

    expect(event.requestContext).toMatchObject({
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method: 'POST', path: '/reports/r%2042/refresh/daily/eu', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' },
      requestId: 'fn-echo-1',
      routeKey: 'POST /reports/{id}/refresh/{proxy+}',
      stage: '$default',
    })
    expect(event.requestContext.time).toMatch(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/)
    expect(Math.abs((event.requestContext.timeEpoch as number) - Date.now())).toBeLessThan(60_000)

    // As an HTTP API's JWT authorizer puts them: every claim a string, arrays as [a b], null claims left out.
    const authorizer = event.requestContext.authorizer as { jwt: { claims: Record<string, string>; scopes: string[] }; bouncer: Record<string, unknown> }
    expect(authorizer.jwt.claims).toMatchObject({ sub: 'svc-finance', iss: idp.issuer, aud: AUDIENCE, groups: '[finance ops]', tenant: 'acme', email_verified: 'true', nested: '{"region":"eu"}' })
    expect(authorizer.jwt.claims.exp).toMatch(/^\d+$/)
    expect(authorizer.jwt.claims).not.toHaveProperty('gone')
    expect(authorizer.jwt.scopes).toEqual(['reports:read', 'reports:write'])
    expect(authorizer.bouncer).toMatchObject({ roles: ['reporter', 'auditor'], issuer: 'corp', subject: 'svc-finance', credential: 'bearer', claims: { groups: ['finance', 'ops'], email_verified: true } })

    expect(context).toMatchObject({ awsRequestId: 'fn-echo-1', functionName: 'echo', functionVersion: '$LATEST', memoryLimitInMB: '128' })
    expect(context.remainingMs).toBeGreaterThan(0)
    expect(context.remainingMs).toBeLessThanOrEqual(30_000)
    // The function's environment, as Lambda's: its own variables and Lambda's about it, none of the gateway's.
    expect(env).toEqual({ REPORT_BUCKET: 'reports-eu', AWS_LAMBDA_FUNCTION_NAME: 'echo', AWS_LAMBDA_FUNCTION_VERSION: '$LATEST', AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128' })
  })

  it('a public route has no authorizer, an unvouched Host is not handed on, and a request without a body has none', async () => {
    const res = await request(`${gw.url}/public/echo`, { headers: { host: 'evil.example.net' } })
    expect(res.statusCode).toBe(200)
    const { event } = (await res.body.json()) as Echoed
    expect(event.requestContext.authorizer).toBeUndefined()
    expect((event.headers as Record<string, string>).host).toBeUndefined()
    expect(event.requestContext.domainName).toBe('')
    expect(event).not.toHaveProperty('body')
    expect(event).not.toHaveProperty('cookies')
    expect(event).not.toHaveProperty('queryStringParameters')
    expect(event).not.toHaveProperty('pathParameters')
    expect(event.isBase64Encoded).toBe(false)
    expect(event.routeKey).toBe('ANY /public/echo')
  })

  it('a body that is not text by its Content-Type, or not UTF-8, comes base64-encoded', async () => {
    const post = async (contentType: string, body: Buffer | string) => {
      const res = await request(`${gw.url}/public/echo`, { method: 'POST', headers: { 'content-type': contentType }, body })
      return ((await res.body.json()) as Echoed).event
    }
    expect(await post('application/x-www-form-urlencoded', 'a=1&b=2')).toMatchObject({ body: Buffer.from('a=1&b=2').toString('base64'), isBase64Encoded: true })
    expect(await post('text/csv; charset=utf-8', 'a,b\n1,2\n')).toMatchObject({ body: 'a,b\n1,2\n', isBase64Encoded: false })
    expect(await post('text/plain; charset=iso-8859-1', Buffer.from([0x63, 0x61, 0x66, 0xe9]))).toMatchObject({ body: 'Y2Fm6Q==', isBase64Encoded: true })
    expect(await post('application/json', Buffer.from([0x7b, 0xff, 0x7d]))).toMatchObject({ body: 'e/99', isBase64Encoded: true })
  })

  it('a binary body makes the round trip through base64 unchanged (a CommonJS handler in the callback style)', async () => {
    const bytes = randomBytes(200_000) // more than the pipeline's 64 KiB body window
    const res = await request(`${gw.url}/binary`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('application/octet-stream')
    expect(res.headers['x-bytes']).toBe(String(bytes.length))
    expect(Buffer.from(await res.body.arrayBuffer()).equals(bytes)).toBe(true)
  })

  it('a chunked body over max_body_bytes is refused with 413, its record counting the bytes that came', async () => {
    const big = await startTestGateway({
      server: { max_body_bytes: 100_000 },
      functions: [{ name: 'binary', module: join(FIXTURES, 'binary.cjs'), concurrency: 1 }],
      routes: [{ id: 'binary', methods: ['POST'], path: '/binary', function: 'binary', public: true }],
      audit: { sinks: [{ type: 'sqlite', path: './audit.db' }], spill_dir: './spill', flush_interval: '50ms' },
    })
    try {
      // Past the pipeline's 64 KiB window, so the function's own read refuses it (its record said bytes_in 0).
      const chunks = Array.from({ length: 4 }, () => randomBytes(40_000))
      const res = await request(`${big.url}/binary`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'x-request-id': 'fn-413' }, body: Readable.from(chunks) })
      expect(res.statusCode).toBe(413)
      expect(((await res.body.json()) as { code: string }).code).toBe('payload_too_large')
      const source = { type: 'sqlite' as const, path: join(big.dir, 'audit.db') }
      let record: Record<string, unknown> | undefined
      const found = () => searchAudit(source, { limit: 10 }).then((rows) => rows.find((r) => r.request_id === 'fn-413'), () => undefined) // no log until the first batch
      await waitFor(async () => (record = await found()) !== undefined, 'the audit record')
      expect(record).toMatchObject({ status: 413, code: 'payload_too_large' })
      expect(record?.bytes_in).toBeGreaterThan(100_000)
      expect(record?.bytes_in).toBeLessThanOrEqual(160_000)
    } finally {
      await big.close()
    }
  })

  it('what a handler returns without a statusCode is inferred as AWS does: 200, application/json, the JSON as the body', async () => {
    const get = async (kind: string) => {
      const res = await request(`${gw.url}/infer?kind=${kind}`)
      return { status: res.statusCode, type: res.headers['content-type'], body: await res.body.text() }
    }
    expect(await get('object')).toEqual({ status: 200, type: 'application/json', body: '{"message":"Hello from Lambda!","at":"1970-01-01T00:00:00.000Z"}' })
    expect(await get('string')).toEqual({ status: 200, type: 'application/json', body: 'Hello from Lambda!' })
    expect(await get('number')).toEqual({ status: 200, type: 'application/json', body: '42' })
    expect(await get('nothing')).toEqual({ status: 200, type: 'application/json', body: 'null' })
  })

  it('a response API Gateway would call malformed is 502 function_error, saying what is wrong', async () => {
    const res = await request(`${gw.url}/infer?kind=malformed`, { headers: { 'x-request-id': 'fn-malformed' } })
    expect(res.statusCode).toBe(502)
    const problem = (await res.body.json()) as { code: string; detail: string; request_id: string }
    expect(problem).toMatchObject({ code: 'function_error', request_id: 'fn-malformed' })
    expect(problem.detail).toContain('body must be a string')
  })

  it('the audit record names the function as the target and its status', async () => {
    await (await request(`${gw.url}/public/echo`, { headers: { 'x-request-id': 'fn-audited' } })).body.dump()
    const source = { type: 'sqlite' as const, path: join(gw.dir, 'audit.db') }
    let record: Record<string, unknown> | undefined
    await waitFor(async () => (record = (await searchAudit(source, { limit: 100 })).find((r) => r.request_id === 'fn-audited')) !== undefined, 'the audit record')
    expect(record).toMatchObject({ route: 'echo.public', upstream: 'function:echo', upstream_status: 200, status: 200, decision: 'allow' })
  })
})
