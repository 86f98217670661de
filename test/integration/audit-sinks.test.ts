// Audit sinks against real servers and real failures: PostgreSQL (shared, and a private one that
// is stopped during load), stdout, and a gateway SIGKILLed with durability: sync.
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { Pool, request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditRecord } from '../../src/audit/record.ts'
import { searchAudit } from '../../src/audit/search.ts'
import { verifyAudit } from '../../src/audit/verify.ts'
import { startServe } from '../helpers/cli.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { auditRecordCount, dropSchema, SHARED_POSTGRES, startPostgres, uniqueSchema } from '../helpers/postgres.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

let dir: string
let upstream: TestUpstream

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-sinks-'))
  upstream = await startUpstream((_req, res) => {
    res.end('ok')
  })
})
afterAll(async () => {
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

const route = () => ({ upstreams: [{ name: 'api', url: upstream.url }], routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }] })

describe('the PostgreSQL sink', () => {
  it('creates its schema, stores every field as a column, and verifies', async () => {
    const schema = uniqueSchema('sink')
    const gw = await startTestGateway({
      audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema }, { type: 'sqlite', path: join(dir, 'both.db') }], spill_dir: join(dir, 'spill-both'), flush_interval: '10ms' },
      ...route(),
    })
    for (let i = 0; i < 5; i++) await (await request(`${gw.url}/pg/${i}`, { headers: { 'x-request-id': `pg-${i}` } })).body.dump()
    await waitFor(async () => (await auditRecordCount(SHARED_POSTGRES, schema)) === 5, 'five rows in PostgreSQL')
    await gw.close()

    const client = new pg.Client({ connectionString: SHARED_POSTGRES })
    await client.connect()
    const columns = (await client.query('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2', [schema, 'audit_records'])).rows.map((r) => r.column_name as string)
    await client.end()
    for (const field of ['id', 'time', 'request_id', 'trace_id', 'method', 'path', 'route', 'status', 'decision', 'code', 'statement', 'issuer', 'subject', 'client_id', 'roles', 'source_ip', 'user_agent', 'upstream', 'upstream_status', 'duration_ms', 'bytes_in', 'bytes_out', 'limit', 'credential', 'actor', 'tool', 'args_sha256', 'attempts', 'instance', 'prev_hash', 'hash']) {
      expect(columns).toContain(field)
    }
    const fromPg = await searchAudit({ type: 'postgres', url: SHARED_POSTGRES, schema }, { limit: 10 })
    const fromSqlite = await searchAudit({ type: 'sqlite', path: join(dir, 'both.db') }, { limit: 10 })
    expect(fromPg).toEqual(fromSqlite) // the same records, field for field, in both sinks
    expect(fromPg.map((r) => r.request_id)).toEqual(['pg-4', 'pg-3', 'pg-2', 'pg-1', 'pg-0'])
    expect(await verifyAudit({ type: 'postgres', url: SHARED_POSTGRES, schema })).toMatchObject({ ok: true, checked: 5, chains: 1, problems: [] })
    await dropSchema(SHARED_POSTGRES, schema)
  })

  it('stopped during load and restarted: every record arrives, in order, chain intact, none dropped', { timeout: 60_000 }, async () => {
    const server = await startPostgres()
    const schema = uniqueSchema('outage')
    const gw = await startTestGateway({
      audit: { sinks: [{ type: 'postgres', url: server.url, schema }], spill_dir: join(dir, 'spill-outage'), flush_interval: '20ms' },
      ...route(),
    })
    try {
      await waitFor(async () => (await auditRecordCount(server.url, schema)) === 0, 'the schema')
      const sent: string[] = []
      const phase = async (count: number) => {
        for (let i = 0; i < count; i++) {
          const id = `req-${sent.length}`
          const res = await request(`${gw.url}/load`, { headers: { 'x-request-id': id } })
          await res.body.dump()
          expect(res.statusCode).toBe(200)
          sent.push(id)
        }
      }
      await phase(150)
      await server.stop()
      await phase(150) // PostgreSQL is away: records spill to disk, requests are not affected
      await waitFor(() => gw.state.audit.stats().spilled > 0, 'spilling')
      await server.start()
      await phase(150)
      await waitFor(async () => (await auditRecordCount(server.url, schema)) === sent.length, 'every record in PostgreSQL', 30_000)

      // The worker reports its counters every second.
      await waitFor(() => gw.state.audit.stats().replayed > 0, 'the replay count')
      expect(gw.state.audit.stats().dropped).toBe(0)
      const client = new pg.Client({ connectionString: server.url })
      await client.connect()
      const order = (await client.query(`SELECT request_id FROM ${schema}.audit_records ORDER BY seq`)).rows.map((r) => r.request_id as string)
      await client.end()
      expect(order).toEqual(sent)
      expect(await verifyAudit({ type: 'postgres', url: server.url, schema })).toMatchObject({ ok: true, checked: sent.length, chains: 1, problems: [] })
    } finally {
      await gw.close()
      await server.destroy()
    }
  })
})

/** Records in a SQLite log so far (0 before its table exists). */
function storedIn(path: string): number {
  try {
    const database = new DatabaseSync(path, { readOnly: true, timeout: 5000 })
    try {
      return (database.prepare('SELECT count(*) AS n FROM audit_records').get() as { n: number }).n
    } finally {
      database.close()
    }
  } catch {
    return 0
  }
}

describe('a sink whose writes hold the audit worker', () => {
  // A SQLite write waits on its lock, here held by the test as a slow disk or a long checkpoint
  // would: the worker's thread is held, and the batches the request thread goes on posting wait in
  // its queue. Those were not counted against queue_capacity (the sink's backlog stayed one batch),
  // so a sink that stayed slow let them grow in memory without bound. They count now: past the
  // capacity they spill to disk, and are replayed once the sink keeps up.
  it('counts the records waiting in the worker\'s queue against queue_capacity: past it they spill, and none is lost', { timeout: 30_000 }, async () => {
    const path = join(dir, 'held.db')
    const gw = await startTestGateway({ ...route(), audit: { sinks: [{ type: 'sqlite', path }], flush_interval: '10ms', queue_capacity: 100, spill_dir: join(dir, 'held-spill') } })
    const rows = () => {
      if (!existsSync(path)) return 0
      const db = new DatabaseSync(path, { readOnly: true, timeout: 5000 })
      try {
        return (db.prepare('SELECT count(*) AS n FROM audit_records').get() as { n: number }).n
      } catch {
        return 0 // the worker has created the file, not yet its tables
      } finally {
        db.close()
      }
    }
    const lock = new DatabaseSync(path, { timeout: 5000 })
    try {
      await (await request(`${gw.url}/first`)).body.text()
      await waitFor(() => rows() === 1, 'the first record')
      lock.exec('BEGIN IMMEDIATE') // the worker's next write waits for it
      for (let i = 0; i < 300; i++) await (await request(`${gw.url}/held/${i}`)).body.text()
      await waitFor(async () => ((await metricValue(gw.adminUrl, 'bouncer_audit_queue_depth')) ?? 0) >= 300, 'the records to be queued')
      lock.exec('COMMIT')
      await waitFor(async () => ((await metricValue(gw.adminUrl, 'bouncer_audit_spilled_total')) ?? 0) > 0, 'records past the capacity to spill', 10_000)
      await waitFor(() => rows() === 301, 'every record in the log, the spilled ones replayed', 20_000)
      expect(await metricValue(gw.adminUrl, 'bouncer_audit_dropped_total')).toBe(0)
      expect(gw.logs.join('')).toContain('more than 100 records waiting')
    } finally {
      if (lock.isTransaction) lock.exec('ROLLBACK')
      lock.close()
      await gw.close()
    }
  })
})

describe('a SQLite log deleted under the running gateway', () => {
  it('is made again at its path for the records that follow, and the warning says why', { timeout: 30_000 }, async () => {
    const own = await mkdtemp(join(dir, 'deleted-'))
    const db = join(own, 'audit.db')
    const gw = await startTestGateway({ audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(own, 'spill'), flush_interval: '10ms' }, ...route() })
    try {
      for (const path of ['/a', '/b']) await (await request(`${gw.url}${path}`)).body.dump()
      await waitFor(() => storedIn(db) === 2, 'the first two records')
      for (const file of [db, `${db}-wal`, `${db}-shm`]) await rm(file, { force: true })
      // Before, they went on into the deleted file through its open handle: nobody could read them, and they were lost at exit.
      for (const path of ['/c', '/d']) await (await request(`${gw.url}${path}`)).body.dump()
      await waitFor(() => storedIn(db) === 2, 'the next two records in a new file at the path')
      expect((await searchAudit({ type: 'sqlite', path: db }, { limit: 10 })).map((r) => r.path).sort()).toEqual(['/c', '/d'])
      expect(gw.logs.join('')).toContain(`the SQLite audit log ${db} was deleted since the gateway opened it`)
    } finally {
      await gw.close()
    }
  })
})

describe('durability: sync', () => {
  it('SIGKILL during load: every request that got a response has its record on disk', { timeout: 30_000 }, async () => {
    const db = join(dir, 'sync.db')
    const file = join(dir, 'sync.yaml')
    await writeFile(file, stringify({
      server: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
      audit: { sinks: [{ type: 'sqlite', path: db }], durability: 'sync', spill_dir: join(dir, 'spill-sync') },
      ...route(),
    }))
    const gw = await startServe(['--config', file])
    const client = new Pool(gw.url, { connections: 8 })
    const answered: string[] = []
    let killed = false
    let next = 0
    const worker = async () => {
      while (!killed) {
        const id = `sync-${next++}`
        try {
          const res = await client.request({ path: '/x', method: 'GET', headers: { 'x-request-id': id } })
          await res.body.text()
          if (res.statusCode === 200) answered.push(id)
        } catch {
          // the gateway died under this request: it got no response
        }
      }
    }
    const load = Promise.all(Array.from({ length: 8 }, worker))
    // Killed in full flow: well over a hundred answered, and records already committed to disk.
    await waitFor(() => answered.length > 150 && storedIn(db) > 100, 'load with records committed', 20_000)
    gw.child.kill('SIGKILL')
    killed = true
    await gw.exited
    await load
    await client.close()

    expect(answered.length).toBeGreaterThan(100)
    const database = new DatabaseSync(db, { readOnly: true, timeout: 5000 })
    const stored = new Set((database.prepare('SELECT request_id FROM audit_records').all() as Array<{ request_id: string }>).map((r) => r.request_id))
    database.close()
    const missing = answered.filter((id) => !stored.has(id))
    expect(missing).toEqual([])
  })
})

describe('durability: sync, refusals before the pipeline', () => {
  // Found by an adversarial probe: Node's parser's refusals (431, a malformed request's 400, a
  // CONNECT's 400) were written raw, then their records queued: answered with none committed.
  it('a 431, a malformed request and a CONNECT are answered once their records are committed', async () => {
    // A long flush interval: a record is in SQLite at once only when it was committed before the answer.
    const db = join(dir, 'sync-refusals.db')
    const gw = await startTestGateway({ audit: { sinks: [{ type: 'sqlite', path: db }], durability: 'sync', flush_interval: '10s', spill_dir: join(dir, 'spill-sync-refusals') }, ...route() })
    try {
      await (await request(`${gw.url}/first`)).body.dump() // its record makes the log
      const sendRaw = async (text: string): Promise<string> => {
        const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
        let answer = ''
        socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
        socket.on('error', () => {})
        socket.write(text)
        await once(socket, 'close') // a raw refusal closes its connection once it is written
        return answer
      }
      const answers = [
        await sendRaw(`GET /big HTTP/1.1\r\nHost: gw\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
        await sendRaw('GET /bad HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'),
        await sendRaw('CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n'),
      ]
      const stored = new Set((await searchAudit({ type: 'sqlite', path: db }, { limit: 50 })).map((r) => `${r.status} ${r.code} ${r.request_id}`))
      for (const answer of answers) {
        const problem = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { status: number; code: string; request_id: string }
        expect(stored, answer.split('\r\n')[0]).toContain(`${problem.status} ${problem.code} ${problem.request_id}`)
      }
      expect(answers.map((answer) => answer.split('\r\n')[0])).toEqual(['HTTP/1.1 431 Request headers too large', 'HTTP/1.1 400 Bad request', 'HTTP/1.1 400 Bad path'])
    } finally {
      await gw.close()
    }
  })
})

describe('the stdout sink', () => {
  it('writes one JSON record per line, fields in SPEC order', async () => {
    const file = join(dir, 'stdout.yaml')
    await writeFile(file, stringify({ server: { listen: '127.0.0.1:0' }, admin: { listen: '127.0.0.1:0' }, audit: { sinks: [{ type: 'stdout' }], spill_dir: join(dir, 'spill-stdout'), flush_interval: '10ms' }, ...route() }))
    const gw = await startServe(['--config', file])
    for (let i = 0; i < 3; i++) await (await request(`${gw.url}/out/${i}`, { headers: { 'x-request-id': `out-${i}` } })).body.dump()
    await waitFor(() => gw.stdout().includes('"request_id":"out-2"'), 'the third line')
    await gw.stop()
    const records = gw.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as AuditRecord)
    expect(records.map((r) => r.request_id)).toEqual(['out-0', 'out-1', 'out-2'])
    expect(Object.keys(records[0]!)).toEqual(['id', 'time', 'request_id', 'trace_id', 'method', 'path', 'route', 'status', 'decision', 'code', 'detail', 'statement', 'issuer', 'subject', 'client_id', 'roles', 'source_ip', 'user_agent', 'upstream', 'upstream_status', 'duration_ms', 'bytes_in', 'bytes_out', 'limit', 'credential', 'actor', 'tool', 'args_sha256', 'attempts', 'instance', 'masked', 'args', 'upstream_ms', 'prev_hash', 'hash'])
    expect(records[1]?.prev_hash).toBe(records[0]?.hash)
  })
})
