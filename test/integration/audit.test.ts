// The audit log as compliance reads it: one record for every request whatever its outcome, with
// the SPEC fields; search by the SPEC filters; and a hash chain that names an edited, deleted or
// reordered record.
import { mkdtemp, rm } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { writeFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AUDIT_FIELDS, type AuditRecord } from '../../src/audit/record.ts'
import { searchAudit } from '../../src/audit/search.ts'
import { verifyAudit } from '../../src/audit/verify.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { closedPort } from '../helpers/faults.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type Received, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const ADMIN = 'audit-test-admin-token-0123456789'
let dir: string
let db: string
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-'))
  db = join(dir, 'audit.db')
  idp = await startIdentityProvider()
  upstream = await startUpstream(async (req, res, received) => {
    if (req.url === '/hang') return new Promise(() => {})
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(received))
  })
  gateway = await startTestGateway({
    server: { max_body_bytes: 100, max_header_bytes: 2048 },
    admin: { token: ADMIN },
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '20ms', instance_id: 'audit-test-1' },
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    roles: [{ name: 'reports', assumed_by: [{ issuer: 'corp', subject: 'looker-*' }], policies: ['read'] }],
    policies: [{ name: 'read', statements: [
      { sid: 'ReadData', effect: 'allow', actions: ['GET', 'POST'], routes: ['data', 'limited', 'slow'] },
      { sid: 'NoSecrets', effect: 'deny', actions: ['*'], routes: ['secrets'] },
    ] }],
    limits: [{ name: 'one-only', key: 'principal', rate: '1/m', burst: 1 }],
    upstreams: [
      { name: 'api', url: upstream.url },
      { name: 'gone', url: `http://127.0.0.1:${await closedPort()}` },
      { name: 'slow', url: upstream.url, timeout: '200ms' },
    ],
    routes: [
      { id: 'data', path: '/data/*', upstream: 'api' },
      { id: 'secrets', path: '/secrets', upstream: 'api' },
      { id: 'limited', path: '/limited', upstream: 'api', limits: ['one-only'] },
      { id: 'gone', path: '/gone', upstream: 'gone', public: true },
      { id: 'slow', path: '/hang', upstream: 'slow' },
      { id: 'open', path: '/open/*', upstream: 'api', public: true },
    ],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'keys')
})

afterAll(async () => {
  await gateway.close()
  await upstream.close()
  await idp.stop()
  await rm(dir, { recursive: true, force: true })
})

let n = 0
async function send(path: string, options: { token?: string; method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const requestId = `audit-${++n}`
  const headers: Record<string, string> = { 'x-request-id': requestId, 'user-agent': 'Looker/24.0', ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  const res = await request(`${gateway.url}${path}`, { method: options.method ?? 'GET', headers, body: options.body })
  const text = await res.body.text()
  return { requestId, status: res.statusCode, text }
}

async function recordOf(requestId: string): Promise<AuditRecord> {
  let found: AuditRecord | undefined
  await waitFor(async () => {
    found = (await searchAudit({ type: 'sqlite', path: db }, { limit: 500 }).catch(() => [])).find((r) => r.request_id === requestId)
    return found !== undefined
  }, `the audit record of ${requestId}`)
  return found as AuditRecord
}

describe('one record for every request, whatever its outcome', () => {
  it('allowed: who, what, which statement, how it went upstream', async () => {
    const token = await idp.token('looker-reports')
    const sent = await send('/data/daily?region=eu', { token, headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } })
    expect(sent.status).toBe(200)
    const record = await recordOf(sent.requestId)
    expect(record).toMatchObject({
      request_id: sent.requestId,
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      method: 'GET',
      path: '/data/daily',
      route: 'data',
      status: 200,
      decision: 'allow',
      code: null,
      detail: null,
      statement: 'ReadData',
      issuer: idp.issuer,
      subject: 'looker-reports',
      client_id: 'looker-reports',
      roles: ['reports'],
      source_ip: '127.0.0.1',
      user_agent: 'Looker/24.0',
      upstream: 'api',
      upstream_status: 200,
      bytes_in: 0,
      bytes_out: sent.text.length,
      limit: null,
      credential: 'bearer',
      actor: null,
      tool: null,
      args_sha256: null,
      attempts: 1,
      instance: 'audit-test-1',
    })
    expect(record.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(Date.parse(record.time)).toBeGreaterThan(Date.now() - 60_000)
    expect(record.duration_ms).toBeGreaterThan(0)
    expect(record.hash).toMatch(/^[0-9a-f]{64}$/)
    expect(record.prev_hash).toMatch(/^[0-9a-f]{64}$/)
    expect((JSON.parse(sent.text) as Received).headers.traceparent).toContain('4bf92f3577b34da6a3ce929d0e0e4736')
  })

  it.each([
    ['no token: 401 missing_token', '/data/x', {}, { status: 401, decision: 'deny', code: 'missing_token', route: 'data', subject: null, credential: null, attempts: null }],
    ['no route: 404', '/nowhere', {}, { status: 404, decision: 'deny', code: 'route_not_found', route: null, attempts: null, instance: 'audit-test-1' }],
    ['a hostile path: 400 bad_path, recorded as sent', '/data/a%2Fb', {}, { status: 400, code: 'bad_path', path: '/data/a%2Fb' }],
    // The target as sent was the record's path, query and all: a token in it stayed in the audit log for good.
    ['a hostile path with a token in its query: recorded without the query', '/data/a%2Fb?access_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln&x=1', {}, { status: 400, code: 'bad_path', path: '/data/a%2Fb' }],
    ['no connection upstream: 502 (tried once)', '/gone', {}, { status: 502, decision: 'error', code: 'upstream_unavailable', upstream: 'gone', upstream_status: null, credential: null, attempts: 1 }],
    ['a body too large: 413', '/open/x', { method: 'POST', body: 'x'.repeat(200) }, { status: 413, code: 'payload_too_large' }],
    ['a body too large, with a key in its query: 413, recorded without the query', '/open/x?api_key=s3cret-in-query', { method: 'POST', body: 'x'.repeat(200) }, { status: 413, code: 'payload_too_large', path: '/open/x' }],
  ] as const)('%s', async (_name, path, options, expected) => {
    const sent = await send(path, options)
    expect(sent.status).toBe(expected.status)
    expect(await recordOf(sent.requestId)).toMatchObject(expected)
  })

  it('denied by policy: 403 with the statement and the roles held', async () => {
    const sent = await send('/secrets', { token: await idp.token('looker-reports') })
    expect(sent.status).toBe(403)
    expect(await recordOf(sent.requestId)).toMatchObject({
      decision: 'deny', code: 'policy_denied', statement: 'NoSecrets', roles: ['reports'], subject: 'looker-reports',
      detail: 'Statement "NoSecrets" of policy "read" denies GET on route "secrets".',
    })
  })

  it('no role: 403 no_role with the verified subject', async () => {
    const sent = await send('/data/x', { token: await idp.token('analytics-agent') })
    expect(await recordOf(sent.requestId)).toMatchObject({ status: 403, code: 'no_role', subject: 'analytics-agent', roles: [] })
  })

  it('throttled: 429 naming the limit', async () => {
    const token = await idp.token('looker-reports')
    await send('/limited', { token })
    const sent = await send('/limited', { token })
    expect(sent.status).toBe(429)
    expect(await recordOf(sent.requestId)).toMatchObject({ code: 'rate_limited', limit: 'one-only', decision: 'deny' })
  })

  it('an upstream that does not answer: 504', async () => {
    const sent = await send('/hang', { token: await idp.token('looker-reports') })
    expect(await recordOf(sent.requestId)).toMatchObject({ status: 504, decision: 'error', code: 'upstream_timeout', upstream: 'slow' })
  })

  it('issuer drift is named in the record, and no unverified claim is recorded', async () => {
    const sent = await send('/data/x', { token: await idp.mint({ iss: `${idp.issuer}/`, sub: 'looker-x' }) })
    const record = await recordOf(sent.requestId)
    expect(record).toMatchObject({ status: 401, code: 'issuer_unknown', issuer: null, subject: null })
    expect(record.detail).toContain('issuer drift')
  })

  it('an absolute-form target refused, with a / in its query: recorded as path /, none of the query', async () => {
    // The authority was taken to end at the first / anywhere, the query's included: the path recorded was "/dEf+gh=", a signature's tail.
    const res = await rawRequest(Number(new URL(gateway.url).port), 'GET http://elsewhere.example?sig=AbC/dEf+gh= HTTP/1.1\r\nHost: gw\r\nX-Request-Id: audit-absolute-query\r\n\r\n')
    expect(res.status).toBe(400)
    expect(await recordOf('audit-absolute-query')).toMatchObject({ status: 400, code: 'bad_path', path: '/' })
  })

  it('a request Node\'s parser refuses is recorded too', async () => {
    const res = await rawRequest(Number(new URL(gateway.url).port), `GET /open/x HTTP/1.1\r\nHost: gw\r\nX-Big: ${'a'.repeat(3000)}\r\n\r\n`)
    expect(res.status).toBe(431)
    expect(await recordOf(res.headers['x-request-id'] as string)).toMatchObject({ status: 431, code: 'headers_too_large', method: '-', decision: 'deny', credential: null, attempts: null, instance: 'audit-test-1' })
  })
})

describe('search', () => {
  it('bouncer audit filters by principal, route, decision and status, newest first', async () => {
    const token = await idp.token('looker-reports')
    await send('/data/a', { token })
    await send('/data/b', { token })
    const file = join(dir, 'bouncer.yaml')
    await writeFile(file, stringify({ audit: { sinks: [{ type: 'sqlite', path: db }] } }))
    await waitFor(async () => (await searchAudit({ type: 'sqlite', path: db }, { limit: 1, route: 'data', status: 200 }))[0]?.path === '/data/b', 'the newest record')
    const json = await runCliInProcess(['audit', '--config', file, '--principal', 'looker-reports', '--route', 'data', '--decision', 'allow', '--since', '1h', '--json', '--limit', '2'])
    expect(json.code).toBe(0)
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditRecord)
    expect(lines.map((r) => r.path)).toEqual(['/data/b', '/data/a'])
    expect(Object.keys(lines[0]!)).toEqual(AUDIT_FIELDS) // every field, in SPEC order
    expect(lines[0]).toMatchObject({ credential: 'bearer', attempts: 1, instance: 'audit-test-1', actor: null, tool: null, args_sha256: null })
    const table = await runCliInProcess(['audit', '--config', file, '--decision', 'deny', '--status', '403'])
    expect(table.stdout.split('\n')[0]).toMatch(/^TIME \(UTC\)\s+STATUS\s+DECISION\s+REQUEST\s+ROUTE\s+SUBJECT\s+WHY$/)
    expect(table.stdout).toContain('policy_denied (NoSecrets)')
    expect(table.stdout).not.toContain(' 200 ')
    expect((await runCliInProcess(['audit', '--config', file, '--since', 'yesterday-ish'])).code).toBe(2)
    // Date.parse read `12` as 2001-12-01: "no records match", exit 0.
    expect(await runCliInProcess(['audit', '--config', file, '--until', '12'])).toMatchObject({ code: 2, stdout: '', stderr: expect.stringContaining('until "12" is not a time') })
  })

  it('GET /api/audit takes the same filters', async () => {
    const res = await request(`${gateway.adminUrl}/api/audit?decision=deny&status=429&limit=5`, { headers: { authorization: `Bearer ${ADMIN}` } })
    const records = (await res.body.json()) as AuditRecord[]
    expect(records.length).toBeGreaterThanOrEqual(1)
    expect(records.every((r) => r.status === 429 && r.decision === 'deny')).toBe(true)
    const bad = await request(`${gateway.adminUrl}/api/audit?limit=100000`, { headers: { authorization: `Bearer ${ADMIN}` } })
    expect(bad.statusCode).toBe(400)
    await bad.body.dump()
  })
})

describe('search, read as asked', () => {
  it('GET /api/audit refuses a parameter that is no filter, a status that is no number or no HTTP status, and a range that ends before it starts', async () => {
    // A misspelled filter answered every record as if it had selected them; status=1000 answered [] (an adversarial probe).
    for (const [query, detail] of [
      ['principle=looker-reports', '"principle" is not a filter: since, until, route, status, decision, principal, actor, limit.'],
      ['status=0x1F4', 'status must be a whole number (32 bits).'],
      ['status=1000', 'status is an HTTP status, from 100 to 599 (or 0: a record no response went with).'],
      ['status=99', 'status is an HTTP status, from 100 to 599 (or 0: a record no response went with).'],
      ['status=-200', 'status is an HTTP status, from 100 to 599 (or 0: a record no response went with).'],
      ['since=2026-12-05T00:00:00Z&until=2026-12-04T00:00:00Z', 'since must not be after until.'],
    ]) {
      const res = await request(`${gateway.adminUrl}/api/audit?${query}`, { headers: { authorization: `Bearer ${ADMIN}` } })
      expect(res.statusCode, query).toBe(400)
      expect(await res.body.json(), query).toMatchObject({ code: 'bad_request', detail })
    }
  })

  // Found by an adversarial probe: `principal=` selected the records whose subject is "" (none) and
  // `status=` was refused, where the console reads an empty field as no filter (and sends none).
  it('GET /api/audit reads an empty filter as no filter, as the console does', async () => {
    const get = async (query: string) => {
      const res = await request(`${gateway.adminUrl}/api/audit?${query}`, { headers: { authorization: `Bearer ${ADMIN}` } })
      return { status: res.statusCode, ids: ((await res.body.json()) as AuditRecord[]).map((r) => r.id) }
    }
    const all = await get('limit=20')
    expect(all.status).toBe(200)
    expect(all.ids.length).toBeGreaterThan(0)
    for (const empty of ['principal=', 'status=', 'route=', 'decision=', 'actor=', 'since=', 'until=', 'principal=&status=&route=']) {
      expect(await get(`${empty}&limit=20`), empty).toEqual(all)
    }
  })
})

/** A CSV file's rows of cells as a spreadsheet whose list separator is `separator` reads them: a quote opens a cell only at its start. */
function rowsAs(text: string, separator: string): string[][] {
  const rows: string[][] = []
  let cells: string[] = []
  let cell = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted && c === '"' && text[i + 1] === '"') {
      cell += '"'
      i++
    } else if (quoted && c === '"') {
      quoted = false
    } else if (!quoted && c === '"' && cell === '') {
      quoted = true
    } else if (!quoted && c === separator) {
      cells.push(cell)
      cell = ''
    } else if (!quoted && c === '\n') {
      rows.push([...cells, cell])
      cells = []
      cell = ''
    } else {
      cell += c
    }
  }
  return rows
}

describe('the console\'s CSV export', () => {
  // Found by the audit probe: only a value's start was kept from reading as a formula. Excel in a
  // locale whose list separator is `;` (German, French…) splits the line at every `;`, and takes a
  // line break for the row's end, where a comma-quoted cell is no quoted cell to it: the part after
  // one — `=1+2` in a path anyone can request, `=3+4` in an unsigned token's iss — began a cell.
  it('no cell begins a formula, where `,` separates cells nor where `;` does', async () => {
    const { requestId } = await send('/open/a;=1+2', { headers: { 'user-agent': 'x;@SUM(1+1);-2;+3' } })
    await recordOf(requestId)
    const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url')
    const unsigned = `${b64('{"alg":"RS256","typ":"at+jwt","kid":"k"}')}.${b64(JSON.stringify({ iss: 'https://evil.example/\n=3+4', sub: 'x', aud: 'a', exp: 9999999999 }))}.${b64('sig')}`
    const broken = await send('/data/x', { token: unsigned })
    expect((await recordOf(broken.requestId)).detail).toContain('\n=3+4')
    const res = await request(`${gateway.adminUrl}/api/audit/export?format=csv&since=1h`, { headers: { authorization: `Bearer ${ADMIN}` } })
    expect(res.statusCode).toBe(200)
    const text = await res.body.text()
    expect(text).toContain(`,"/open/a;'=1+2",`)
    expect(text).toContain(`,"x;'@SUM(1+1);'-2;'+3",`)
    expect(text).toContain(`/\n'=3+4`)
    for (const separator of [',', ';']) {
      const formulas = rowsAs(text, separator).flat().filter((cell) => /^[=+\-@]/.test(cell))
      expect(formulas, separator).toEqual([])
    }
  })
})

describe('a log with no records yet', () => {
  it('searches to an empty list, not an error: before the worker has created its tables, and when it cannot', async () => {
    // A file the worker has created but not yet migrated, as a reader can catch it at start.
    const empty = join(dir, 'not-yet-migrated.db')
    new DatabaseSync(empty).close()
    await expect(searchAudit({ type: 'sqlite', path: empty }, { limit: 10 })).rejects.toThrow(/no records yet/)
    const file = join(dir, 'not-yet-migrated.yaml')
    await writeFile(file, stringify({ audit: { sinks: [{ type: 'sqlite', path: empty }] } }))
    const cli = await runCliInProcess(['audit', '--config', file])
    expect(cli.code, cli.stderr).not.toBe(0)
    expect(cli.stderr).toContain('no records yet')

    // A sink that cannot open (its directory cannot exist): the gateway spills, and its log is empty.
    const gw = await startTestGateway({
      admin: { token: ADMIN },
      audit: { sinks: [{ type: 'sqlite', path: '/dev/null/audit.db' }], spill_dir: join(dir, 'no-sink-spill') },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
    })
    const res = await request(`${gw.adminUrl}/api/audit`, { headers: { authorization: `Bearer ${ADMIN}` } })
    expect(res.statusCode).toBe(200)
    expect(await res.body.json()).toEqual([])
    await gw.close()
  })
})

describe('tamper evidence', () => {
  async function chainOf(count: number): Promise<{ path: string; file: string }> {
    const own = await mkdtemp(join(dir, 'chain-'))
    const path = join(own, 'audit.db')
    const gw = await startTestGateway({
      audit: { sinks: [{ type: 'sqlite', path }], spill_dir: join(own, 'spill'), flush_interval: '10ms' },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
    })
    for (let i = 0; i < count; i++) await (await request(`${gw.url}/r/${i}`)).body.dump()
    await gw.close()
    const file = join(own, 'bouncer.yaml')
    await writeFile(file, stringify({ audit: { sinks: [{ type: 'sqlite', path }] } }))
    return { path, file }
  }

  const tamper = (path: string, sql: string) => {
    const database = new DatabaseSync(path)
    database.exec(sql)
    database.close()
  }

  it('bouncer audit verify passes an untouched chain, and it continues across restarts', async () => {
    const { path, file } = await chainOf(5)
    expect(await runCliInProcess(['audit', 'verify', '--config', file])).toMatchObject({ code: 0, stdout: 'ok: 5 records in 1 chain verified\nanchored: 1 chain reaches its latest signed checkpoint\n' })
    // A second gateway on the same files continues the chain.
    const gw = await startTestGateway({
      audit: { sinks: [{ type: 'sqlite', path }], spill_dir: join(path, '..', 'spill'), flush_interval: '10ms' },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
    })
    await (await request(`${gw.url}/again`)).body.dump()
    await gw.close()
    expect(await verifyAudit({ type: 'sqlite', path })).toMatchObject({ ok: true, checked: 6, chains: 1, problems: [] })
  })

  it('names an edited record', async () => {
    const { path, file } = await chainOf(5)
    tamper(path, "UPDATE audit_records SET path = '/nothing-to-see' WHERE seq = 3")
    const result = await runCliInProcess(['audit', 'verify', '--config', file])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(/^audit log tampered: record [0-9a-f-]{36} \(seq 3 of chain [0-9a-f-]{36}, .*\): its content does not match its hash \(the record was edited\)\n2 records in 1 chain verified up to the problems above\n$/)
  })

  it('names the record after a deleted one', async () => {
    const { path } = await chainOf(5)
    tamper(path, 'DELETE FROM audit_records WHERE seq = 2')
    expect((await verifyAudit({ type: 'sqlite', path })).problems[0]).toMatchObject({ seq: 3, reason: 'record 2 before it is missing (deleted)' })
  })

  it('names reordered records, even when their seq values were swapped to hide it', async () => {
    const { path } = await chainOf(5)
    tamper(path, 'UPDATE audit_records SET seq = -1 WHERE seq = 2; UPDATE audit_records SET seq = 2 WHERE seq = 4; UPDATE audit_records SET seq = 4 WHERE seq = -1')
    expect((await verifyAudit({ type: 'sqlite', path })).problems[0]).toMatchObject({ seq: 2, reason: 'its prev_hash does not match the record before it (records were reordered or replaced)' })
  })

  it('names an edit whose hash was recomputed to match (the next record still points at the old one)', async () => {
    const { path } = await chainOf(5)
    const database = new DatabaseSync(path)
    const row = database.prepare('SELECT * FROM audit_records WHERE seq = 3').get() as Record<string, unknown>
    const { hashOf } = await import('../../src/audit/record.ts')
    const { recordFromRow } = await import('../../src/audit/sinks/sqlite.ts')
    const forged = { ...recordFromRow(row), path: '/nothing-to-see' }
    const { hash: _old, ...rest } = forged
    database.prepare("UPDATE audit_records SET path = '/nothing-to-see', hash = ? WHERE seq = 3").run(hashOf(rest))
    database.close()
    expect((await verifyAudit({ type: 'sqlite', path })).problems[0]).toMatchObject({ seq: 4, reason: expect.stringContaining('prev_hash') })
  })
})

describe('retention', () => {
  it('deletes records older than retention in the background, and the chain still verifies', async () => {
    const own = await mkdtemp(join(dir, 'retention-'))
    const path = join(own, 'audit.db')
    const gw = await startTestGateway({
      audit: { sinks: [{ type: 'sqlite', path }], spill_dir: join(own, 'spill'), flush_interval: '10ms', retention: '1s' },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
    })
    for (let i = 0; i < 3; i++) await (await request(`${gw.url}/old/${i}`)).body.dump()
    const count = async () => (await searchAudit({ type: 'sqlite', path }, { limit: 10 }).catch(() => [])).length
    await waitFor(async () => (await count()) === 3, 'three records')
    await waitFor(async () => (await count()) === 0, 'retention', 5_000)
    await (await request(`${gw.url}/new`)).body.dump()
    await waitFor(async () => (await count()) === 1, 'a new record')
    expect(await verifyAudit({ type: 'sqlite', path })).toMatchObject({ ok: true, checked: 1 })
    await gw.close()
  })
})
