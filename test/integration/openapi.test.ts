// The admin API's OpenAPI document against the real thing: a running gateway (a real identity
// provider, upstream, SQLite audit log and secrets store) answers every documented operation, and
// each answer's status, content type and body must be what the document says. And nothing the
// admin listener answers is missing from the document.
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminRoutes } from '../../src/admin/api.ts'
import { ADMIN_PROBES } from '../../src/admin/server.ts'
import { startTestGateway, allowAnyCaller, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { schemaErrors, type Schema } from '../helpers/json-schema.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor } from '../helpers/wait.ts'

const ADMIN_TOKEN = 'openapi-test-admin-token-0123456789'
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` }
const READ_TOKEN = 'openapi-test-read-token-0123456789'
const READER = { authorization: `Bearer ${READ_TOKEN}` }
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete'] as const

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>
  security?: unknown[]
}
type Document = Schema & { openapi: string; info: { version: string }; paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>> }

let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway
let doc: Document
let auditDir: string

function config(issuer: string) {
  return {
    audit: { sinks: [{ type: 'sqlite', path: join(auditDir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(auditDir, 'spill') },
    admin: { token: ADMIN_TOKEN, read_token: READ_TOKEN },
    issuers: [{ name: 'corp-sso', issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp-sso']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'reports', methods: ['GET'], path: '/reports/*', upstream: 'api' },
      { id: 'open', path: '/open', upstream: 'api', public: true, limits: ['per-ip'] },
    ],
    limits: [{ name: 'per-ip', key: 'ip', rate: '100/s' }],
    secrets: { store: { type: 'env', prefix: 'OPENAPI_TEST_SECRET_' } },
    api_keys: { store: { type: 'sqlite', path: join(auditDir, 'keys.db') } },
    sign_in: { issuer: 'corp-sso', client_id: 'bouncer-web', session: { store: 'memory' } },
  }
}

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  auditDir = await mkdtemp(join(tmpdir(), 'bouncer-openapi-'))
  gateway = await startTestGateway(config(idp.issuer), { env: { OPENAPI_TEST_SECRET_REPORTS_TOKEN: 'not-shown' } })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp-sso')?.state === 'ready', 'the issuer keys')
  const token = await idp.token('looker-reports')
  await (await request(`${gateway.url}/reports/daily`, { headers: { authorization: `Bearer ${token}` } })).body.dump()
  await (await request(`${gateway.url}/reports/daily`)).body.dump() // 401: a deny in the log
  await (await request(`${gateway.url}/open`)).body.dump()
  await waitFor(async () => (JSON.parse(await text(`${gateway.adminUrl}/api/audit`, AUTH)) as unknown[]).length >= 3, 'three audit records')
  doc = JSON.parse(await text(`${gateway.adminUrl}/api/openapi.json`, AUTH)) as Document
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
  await rm(auditDir, { recursive: true, force: true })
})

async function text(url: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await request(url, { headers })
  return res.body.text()
}

interface Answer {
  status: number
  contentType: string
  body: string
}

async function call(base: string, method: string, path: string, options: { headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  const res = await request(`${base}${path}`, { method: method.toUpperCase() as 'GET', headers: options.headers, body: options.body })
  return { status: res.statusCode, contentType: String(res.headers['content-type'] ?? ''), body: await res.body.text() }
}

/** The answer is one the document gives for this operation: its status, media type and body shape. */
function expectDocumented(path: string, method: string, answer: Answer): void {
  const operation = doc.paths[path]?.[method === 'head' ? 'get' : (method as 'get')] // HEAD: GET without the body (RFC 9110 §9.3.2)
  const where = `${method.toUpperCase()} ${path} → ${answer.status}`
  expect(operation, `${method} ${path} is documented`).toBeDefined()
  const response = operation!.responses[String(answer.status)]
  expect(response, `${where} is a documented status (body: ${answer.body.slice(0, 200)})`).toBeDefined()
  if (method === 'head') return
  const mediaType = answer.contentType.split(';')[0] as string
  const content = response!.content?.[mediaType]
  expect(content, `${where}: ${mediaType} is the documented media type`).toBeDefined()
  const body = ['text/plain', 'text/csv', 'application/x-ndjson'].includes(mediaType) ? answer.body : (JSON.parse(answer.body) as unknown)
  expect(schemaErrors(body, content!.schema, doc), where).toEqual([])
}

const json = { ...AUTH, 'content-type': 'application/json' }

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 for this version, and every reference in it resolves', () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/)
    expect(doc.info.version).toBe((JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version)
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? []
    expect(refs.length).toBeGreaterThan(10)
    for (const ref of new Set(refs)) expect(() => schemaErrors(null, { $ref: JSON.parse(`{${ref}}`).$ref as string }, doc), ref).not.toThrow()
  })

  it('needs the admin credential, like everything under /api/', async () => {
    const answer = await call(gateway.adminUrl, 'get', '/api/openapi.json')
    expect(answer.status).toBe(401)
    expectDocumented('/api/openapi.json', 'get', answer)
  })

  it('documents every route the admin listener answers, and nothing else answers', async () => {
    const documented = Object.entries(doc.paths).flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`))
    const answered = [
      ...ADMIN_PROBES.map((path) => `GET ${path}`),
      ...adminRoutes({ runtime: () => gateway.state.runtime, reload: gateway.reload, secretsStore: () => null, auditHead: () => null, auditConfig: () => gateway.state.runtime.config.audit }).map((route) => `${route.method} /api/${route.path}`),
    ]
    expect(documented.sort()).toEqual(answered.sort())

    // From outside: a method the document does not give is 405, with Allow naming those it does
    // (HEAD wherever GET is: RFC 9110 §9.3.2), a path it does not list is 404. Found by an
    // adversarial probe: a 405 under /api/ had no Allow, and HEAD of a GET endpoint was refused 405.
    for (const [path, item] of Object.entries(doc.paths)) {
      const allow = METHODS.filter((m) => item[m] || (m === 'head' && item.get)).map((m) => m.toUpperCase()).sort().join(', ')
      for (const method of ['post', 'put', 'patch', 'delete', 'options', 'trace'] as const) {
        if (method !== 'options' && method !== 'trace' && item[method]) continue
        const res = await request(`${gateway.adminUrl}${path}`, { method: method.toUpperCase(), headers: AUTH })
        expect(res.statusCode, `${method} ${path}`).toBe(405)
        expect(res.headers.allow, `${method} ${path}`).toBe(allow)
        expect(((await res.body.json()) as { code: string }).code).toBe('method_not_allowed')
      }
      if (!item.get || !path.startsWith('/api/')) continue
      const head = await call(gateway.adminUrl, 'head', path, { headers: AUTH })
      expect(head.status, `HEAD ${path}`).toBe((await call(gateway.adminUrl, 'get', path, { headers: AUTH })).status)
      expect(head.body).toBe('')
    }
    // `/` is the console's page (test/integration/console.test.ts), not an API: GET and HEAD only
    // (POST / was 404 "Nothing at /", an adversarial probe).
    for (const method of ['POST', 'DELETE', 'OPTIONS']) {
      const res = await request(`${gateway.adminUrl}/`, { method, headers: AUTH })
      expect(res.statusCode, `${method} /`).toBe(405)
      expect(res.headers.allow).toBe('GET, HEAD')
      expect(((await res.body.json()) as { code: string }).code).toBe('method_not_allowed')
    }
    for (const path of ['/api', '/api/', '/api/nothing', '/api/routes/x', '/healthz/x', '/openapi.json', '/console']) {
      expect((await call(gateway.adminUrl, 'get', path, { headers: AUTH })).status, path).toBe(404)
    }
  })

  it('describes what every operation answers', async () => {
    const called = new Set<string>()
    const check = async (method: string, path: string, options: { headers?: Record<string, string>; body?: string; query?: string; params?: Record<string, string> } = {}) => {
      const actual = path.replace(/\{(\w+)\}/g, (text, name: string) => options.params?.[name] ?? text)
      const answer = await call(gateway.adminUrl, method, `${actual}${options.query ?? ''}`, options)
      expectDocumented(path, method, answer)
      called.add(`${method} ${path} ${answer.status}`)
      return answer
    }

    expect((await check('get', '/healthz')).status).toBe(200)
    expect((await check('head', '/healthz')).status).toBe(200)
    expect((await check('get', '/readyz')).status).toBe(200)
    expect((await check('get', '/metrics')).body).toContain('bouncer_')
    expect((await check('get', '/api/openapi.json', { headers: AUTH })).status).toBe(200)

    const routes = JSON.parse((await check('get', '/api/routes', { headers: AUTH })).body) as Array<{ id: string }>
    expect(routes.map((r) => r.id)).toEqual(['reports', 'open'])
    expect(JSON.parse((await check('get', '/api/roles', { headers: AUTH })).body)).toHaveLength(1)
    expect(JSON.parse((await check('get', '/api/policies', { headers: AUTH })).body)).toHaveLength(1)
    expect(JSON.parse((await check('get', '/api/secrets', { headers: AUTH })).body)).toMatchObject({ store: 'env', secrets: [{ name: 'reports-token' }] })

    const token = await idp.token('looker-reports')
    const allowed = JSON.parse((await check('post', '/api/explain', { headers: json, body: JSON.stringify({ method: 'GET', path: '/reports/x', token }) })).body)
    expect(allowed).toMatchObject({ decision: { effect: 'allow' } })
    const refused = JSON.parse((await check('post', '/api/explain', { headers: json, body: JSON.stringify({ method: 'GET', path: '/nowhere', claims: {} }) })).body)
    expect(refused).toMatchObject({ route: null, decision: { effect: 'deny', code: 'route_not_found' } })
    const noIssuer = JSON.parse((await check('post', '/api/explain', { headers: json, body: JSON.stringify({ method: 'GET', path: '/reports/x', claims: { iss: 'https://elsewhere/' } }) })).body)
    expect(noIssuer).toMatchObject({ identity: { problems: [{ code: 'issuer_unknown' }] } })
    expect((await check('post', '/api/explain', { headers: json, body: '{"method":' })).status).toBe(400)
    expect((await check('post', '/api/explain', { headers: json, body: JSON.stringify({ path: '/x' }) })).status).toBe(400)
    expect((await check('post', '/api/explain', { headers: json, body: JSON.stringify({ method: 'GET', path: '/x', pad: 'x'.repeat(1_100_000) }) })).status).toBe(413)

    const records = JSON.parse((await check('get', '/api/audit', { headers: AUTH })).body) as Array<{ decision: string }>
    expect(new Set(records.map((r) => r.decision))).toEqual(new Set(['allow', 'deny']))
    expect(JSON.parse((await check('get', '/api/audit', { headers: AUTH, query: '?decision=deny&limit=1&since=1h' })).body)).toHaveLength(1)
    expect((await check('get', '/api/audit', { headers: AUTH, query: '?limit=0' })).status).toBe(400)
    // A parameter given twice: /api/audit read the last, /api/overview the first (an adversarial probe).
    for (const path of ['/api/audit', '/api/audit/page', '/api/overview', '/api/denials']) {
      const twice = await check('get', path, { headers: AUTH, query: '?since=1h&since=30d' })
      expect(twice.status, path).toBe(400)
      expect(JSON.parse(twice.body)).toMatchObject({ code: 'bad_request', detail: 'The query names "since" more than once: each parameter takes one value.' })
    }
    // The head is known once the audit worker has started and reported it.
    await expect.poll(async () => (await call(gateway.adminUrl, 'get', '/api/audit/head', { headers: AUTH })).status, { timeout: 20_000 }).toBe(200)
    expect(JSON.parse((await check('get', '/api/audit/head', { headers: AUTH })).body)).toMatchObject({ key: { crv: 'Ed25519' } })

    // The console's endpoints (src/admin/console-openapi.ts).
    expect(JSON.parse((await check('get', '/api/session', { headers: AUTH })).body)).toMatchObject({ access: 'admin', may: { reload: true } })
    expect(JSON.parse((await check('get', '/api/session', { headers: READER })).body)).toMatchObject({ access: 'read', may: { reload: false } })
    expect(JSON.parse((await check('get', '/api/session', {})).body)).toMatchObject({ access: null, via: null, sign_in: null })
    expect((await check('get', '/api/session', { headers: { authorization: 'Bearer not-the-token' } })).status).toBe(401)
    const overview = JSON.parse((await check('get', '/api/overview', { headers: AUTH, query: '?since=15m' })).body) as { totals: { requests: number } }
    expect(overview.totals.requests).toBeGreaterThanOrEqual(3)
    expect((await check('get', '/api/overview', { headers: AUTH, query: '?since=60d' })).status).toBe(400)
    expect(JSON.parse((await check('get', '/api/denials', { headers: AUTH })).body)).toMatchObject([{ code: 'missing_token', route: 'reports' }])
    expect((await check('get', '/api/denials', { headers: AUTH, query: '?since=soon' })).status).toBe(400)
    const page = JSON.parse((await check('get', '/api/audit/page', { headers: AUTH, query: '?limit=2' })).body) as { records: Array<{ id: string; time: string }>; more: boolean }
    expect(page).toMatchObject({ offset: 0, limit: 2, more: true })
    expect((await check('get', '/api/audit/page', { headers: AUTH, query: '?offset=-1' })).status).toBe(400)
    expect((await check('get', '/api/audit/export', { headers: AUTH, query: '?format=csv' })).body).toMatch(/^id,time,request_id,/)
    expect((await check('get', '/api/audit/export', { headers: AUTH, query: '?format=ndjson&decision=deny' })).body.trim().split('\n')).toHaveLength(1)
    expect((await check('get', '/api/audit/export', { headers: AUTH, query: '?format=xml' })).status).toBe(400)
    // Cut at its limit while more match: said by its name and a header (an export said so nowhere).
    const cut = await request(`${gateway.adminUrl}/api/audit/export?format=csv&limit=1`, { headers: AUTH })
    expect(cut.headers['x-bouncer-export-truncated']).toBe('1')
    expect(cut.headers['content-disposition']).toMatch(/^attachment; filename="bouncer-audit-[0-9TZ-]+-newest-1-of-more\.csv"$/)
    expect((await cut.body.text()).trim().split('\n')).toHaveLength(2)
    const whole = await request(`${gateway.adminUrl}/api/audit/export?format=ndjson&decision=deny&limit=1`, { headers: AUTH })
    expect(whole.headers['x-bouncer-export-truncated']).toBeUndefined()
    expect(whole.headers['content-disposition']).toMatch(/^attachment; filename="bouncer-audit-[0-9TZ-]+\.ndjson"$/)
    expect((await whole.body.text()).trim().split('\n')).toHaveLength(1)
    const first = page.records[0] as { id: string; time: string }
    expect(JSON.parse((await check('get', '/api/audit/trace', { headers: AUTH, query: `?id=${first.id}&time=${first.time}` })).body)).toMatchObject({ record: { id: first.id } })
    expect((await check('get', '/api/audit/trace', { headers: AUTH, query: '?id=x' })).status).toBe(400)
    expect((await check('get', '/api/audit/trace', { headers: AUTH, query: `?id=nothing&time=${first.time}` })).status).toBe(404)
    expect(JSON.parse((await check('post', '/api/audit/verify', { headers: AUTH })).body)).toMatchObject({ ok: true })
    expect((await check('post', '/api/audit/verify', { headers: READER })).status).toBe(403)
    expect(JSON.parse((await check('get', '/api/catalog', { headers: AUTH })).body)).toMatchObject({ roles: ['any-caller'], matrix: { reports: { 'any-caller': { allow: ['GET'] } } } })
    const draft = stringify({ ...config(idp.issuer), policies: [{ name: 'allow-all', statements: [{ sid: 'NothingNow', effect: 'deny', actions: ['*'], routes: ['*'] }] }] })
    const replayed = JSON.parse((await check('post', '/api/replay', { headers: json, body: JSON.stringify({ config: draft, hours: 1 }) })).body) as { changes: Array<{ after: { effect: string } }> }
    expect(replayed.changes.map((c) => c.after.effect)).toContain('deny')
    expect((await check('post', '/api/replay', { headers: json, body: JSON.stringify({ config: 'routes: [' }) })).status).toBe(422)
    expect((await check('post', '/api/replay', { headers: json, body: JSON.stringify({ hours: 1 }) })).status).toBe(400)
    expect((await check('post', '/api/replay', { headers: { ...READER, 'content-type': 'application/json' }, body: JSON.stringify({ config: draft }) })).status).toBe(403)
    expect((await check('post', '/api/reload', { headers: READER })).status).toBe(403)
    expect((await check('delete', '/api/keys/{id}', { headers: READER, params: { id: 'fedcba9876543210' } })).status).toBe(403)

    const created = await runCliInProcess(['keys', 'create', '--config', gateway.file, '--principal', 'looker-studio', '--description', 'Looker Studio'])
    const id = created.stdout.trim().slice(3, 19)
    expect(JSON.parse((await check('get', '/api/keys', { headers: AUTH })).body)).toMatchObject([{ id, principal: 'looker-studio', status: 'active' }])
    expect(JSON.parse((await check('delete', '/api/keys/{id}', { headers: AUTH, params: { id } })).body)).toMatchObject({ id, status: 'revoked' })
    expect((await check('delete', '/api/keys/{id}', { headers: AUTH, params: { id: 'fedcba9876543210' } })).status).toBe(404)

    // A signed-in browser's session, put in the gateway's own store as the callback would.
    const sessionId = 'a'.repeat(32)
    const now = Date.now()
    await gateway.state.runtime.signIn!.store.put({
      id: sessionId, issuer: 'corp-sso', subject: 'alice', claims: { sub: 'alice', email: 'alice@example.com' },
      createdAt: now, lastSeenAt: now, expiresAt: now + 3_600_000, refreshAt: null, sealed: null, audience: 'gateway',
    })
    expect(JSON.parse((await check('get', '/api/sessions', { headers: AUTH })).body)).toMatchObject([{ id: sessionId, subject: 'alice', email: 'alice@example.com', name: null }])
    // The read-only credential may not end a person's session (found by a helper's probe: it did).
    expect((await check('delete', '/api/sessions/{id}', { headers: READER, params: { id: sessionId } })).status).toBe(403)
    expect(await gateway.state.runtime.signIn!.store.get(sessionId)).toBeDefined()
    expect(JSON.parse((await check('delete', '/api/sessions/{id}', { headers: AUTH, params: { id: sessionId } })).body)).toMatchObject({ id: sessionId })
    expect((await check('delete', '/api/sessions/{id}', { headers: AUTH, params: { id: sessionId } })).status).toBe(404)
    // A session cookie's value given as the id is not said back (an adversarial probe: the 404 quoted it).
    const cookieValue = 'Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5'.slice(0, 43)
    const pasted = await check('delete', '/api/sessions/{id}', { headers: AUTH, params: { id: cookieValue } })
    expect(pasted.status).toBe(404)
    expect(pasted.body).not.toContain(cookieValue)
    expect(JSON.parse(pasted.body)).toMatchObject({ detail: 'No session: give its id (32 hex digits, as GET /api/sessions lists it).' })

    expect((await check('post', '/api/reload', { headers: AUTH })).status).toBe(200)
    const good = await readFile(gateway.file, 'utf8')
    await writeFile(gateway.file, `${good}\nnot_a_key: true\n`)
    expect(JSON.parse((await check('post', '/api/reload', { headers: AUTH })).body)).toMatchObject({ ok: false })
    await writeFile(gateway.file, good)

    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) {
        // No security, or an empty requirement among them: the credential is optional.
        if (!item[method] || item[method]!.security?.length === 0 || item[method]!.security?.some((r) => Object.keys(r as object).length === 0)) continue
        expect((await check(method, path)).status, `${method} ${path} without the token`).toBe(401)
      }
    }

    // Answers that need another gateway: one still loading its keys, and one with no audit log to search.
    const jwksHeld = deferred()
    const slowKeys = await startUpstream(async (_req, res) => {
      await jwksHeld.promise
      res.writeHead(503).end()
    })
    const loading = await startTestGateway({ admin: { token: ADMIN_TOKEN }, issuers: [{ name: 'slow', issuer: 'https://slow.example/', audiences: ['a'], jwks_uri: `${slowKeys.url}/jwks` }] })
    try {
      const notReady = await call(loading.adminUrl, 'get', '/readyz')
      expectDocumented('/readyz', 'get', notReady)
      called.add(`get /readyz ${notReady.status}`)
      const noLog = await call(loading.adminUrl, 'get', '/api/audit', { headers: AUTH })
      expectDocumented('/api/audit', 'get', noLog)
      called.add(`get /api/audit ${noLog.status}`)
      const noSink = await call(loading.adminUrl, 'get', '/api/overview', { headers: AUTH })
      expectDocumented('/api/overview', 'get', noSink)
      called.add(`get /api/overview ${noSink.status}`)
      const noHead = await call(loading.adminUrl, 'get', '/api/audit/head', { headers: AUTH })
      expectDocumented('/api/audit/head', 'get', noHead)
      called.add(`get /api/audit/head ${noHead.status}`)
      const noKeys = await call(loading.adminUrl, 'get', '/api/keys', { headers: AUTH })
      expectDocumented('/api/keys', 'get', noKeys)
      called.add(`get /api/keys ${noKeys.status}`)
      const noSessions = await call(loading.adminUrl, 'get', '/api/sessions', { headers: AUTH })
      expectDocumented('/api/sessions', 'get', noSessions)
      called.add(`get /api/sessions ${noSessions.status}`)
    } finally {
      jwksHeld.resolve()
      await loading.close()
      await slowKeys.close()
    }

    // Every documented answer was seen for real.
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      METHODS.flatMap((m) => Object.keys(item[m]?.responses ?? {}).map((status) => `${m} ${path} ${status}`)))
    // The approvals' answers need a gateway with mcp.approvals: mcp-approvals.test.ts sees each of them.
    // An audit log that cannot be read (503 under /api/): audit-probe-unreadable-admin.test.ts sees them.
    expect(documented.filter((answer) => !called.has(answer) && !answer.includes('/api/approvals') && !(answer.includes(' /api/') && answer.endsWith(' 503')))).toEqual([])
  })
})
