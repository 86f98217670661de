// Found by an adversarial probe (helper): retention cut every chain at the newest seq whose record started before the window, so a long request's record (written, and numbered, when it ended) took every younger record before it along.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import type { AuditSource } from '../../src/audit/search.ts'
import { DatabaseSync } from 'node:sqlite'
import pg from 'pg'
import { verifyAudit } from '../../src/audit/verify.ts'

let dir: string
let upstream: TestUpstream

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-retention-window-ret-'))
  upstream = await startUpstream(async (req, res) => {
    if (req.url?.startsWith('/slow')) await sleep(6_000)
    res.end('ok')
  })
})
afterAll(async () => {
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

describe('retention and a long request', () => {
  const schema = uniqueSchema('retwindow')
  afterAll(() => dropSchema(SHARED_POSTGRES, schema))
  const cases: Array<[string, () => { sink: object; source: AuditSource }]> = [
    ['SQLite', () => ({ sink: { type: 'sqlite', path: join(dir, 'audit.db') }, source: { type: 'sqlite', path: join(dir, 'audit.db') } })],
    ['PostgreSQL', () => ({ sink: { type: 'postgres', url: SHARED_POSTGRES, schema }, source: { type: 'postgres', url: SHARED_POSTGRES, schema } })],
  ]
  // The two stores side by side: each has its own gateway, log and spill, and each is mostly the
  // slow request's 6 s and the retention pass's 1.5 s, waited out together.
  for (const [name, setup] of cases) {
    it.concurrent(`${name}: records younger than retention survive when a long request's record (old start time) is written after them`, { timeout: 30_000 }, async ({ expect }) => {
      const { sink, source } = setup()
      const gw = await startTestGateway({
        audit: { sinks: [sink], spill_dir: join(dir, `spill-${name}`), flush_interval: '10ms', retention: '4s' },
        upstreams: [{ name: 'api', url: upstream.url, timeout: '20s' }],
        server: { request_timeout: '20s' },
        routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
      })
      try {
        const slow = request(`${gw.url}/slow`).then((r) => r.body.text())
        await sleep(5_000)
        for (let i = 0; i < 3; i++) await (await request(`${gw.url}/fast/${i}`)).body.dump()
        const fastAt = Date.now()
        await slow
        await waitFor(async () => (await searchAudit(source, { limit: 50 }).catch(() => [])).some((r) => r.path === '/slow'), 'the slow record')
        // Nothing is deleted, so no event says a pass ran: wait out one (retention runs every second).
        await sleep(1_500)
        const records = await searchAudit(source, { limit: 50 })
        expect(Date.now() - fastAt).toBeLessThan(4_000) // the fast records are still within retention
        expect(records.filter((r) => r.path.startsWith('/fast/')).map((r) => r.path).sort()).toEqual(['/fast/0', '/fast/1', '/fast/2'])
      } finally {
        await gw.close()
      }
    })
  }
})

// Found by the audit probe: verify read the chain's start (where retention left it) and then its
// records, statement by statement. A retention run in between — one every retention/10, up to an
// hour, beside a verify that reads a million records — deleted records the walk then missed:
// "records 1–5 before it are missing (deleted)", tampering said of an untouched log. The retention
// pass is run here at that very point, through the real database's own client, between the two reads.
describe('verify while retention trims the chain', () => {
  const schema = uniqueSchema('retverify')
  afterAll(() => dropSchema(SHARED_POSTGRES, schema))
  /** What a retention pass does to a chain (sinks' deleteBefore): its start moves to record 5, and 1–5 go. */
  const trim = (table: string) => [
    `INSERT INTO ${table.replace('records', 'checkpoint')} (chain, seq, hash) SELECT chain, seq, hash FROM ${table} WHERE seq = 5`,
    `DELETE FROM ${table} WHERE seq <= 5`,
  ]
  const isPage = (sql: unknown) => typeof sql === 'string' && /AND seq > \S+ ORDER BY seq LIMIT/.test(sql)

  it.each(['SQLite', 'PostgreSQL'])('%s: a pass between reading the chain\'s start and its records is no tampering', { timeout: 30_000 }, async (name) => {
    const path = join(dir, 'verify-trim.db')
    const sink = name === 'SQLite' ? { type: 'sqlite', path } : { type: 'postgres', url: SHARED_POSTGRES, schema }
    const source: AuditSource = name === 'SQLite' ? { type: 'sqlite', path } : { type: 'postgres', url: SHARED_POSTGRES, schema }
    const gw = await startTestGateway({
      audit: { sinks: [sink], spill_dir: join(dir, `spill-verify-${name}`), flush_interval: '10ms' },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
    })
    for (let i = 0; i < 10; i++) await (await request(`${gw.url}/r/${i}`)).body.dump()
    await gw.close()

    let trimmed = false
    if (name === 'SQLite') {
      const prepare = DatabaseSync.prototype.prepare
      DatabaseSync.prototype.prepare = function (this: DatabaseSync, sql: string) {
        if (!trimmed && isPage(sql)) {
          trimmed = true
          const writer = new DatabaseSync(path)
          writer.exec(`BEGIN; ${trim('audit_records').join('; ')}; COMMIT`)
          writer.close()
        }
        return prepare.call(this, sql)
      } as typeof prepare
      try {
        expect(await verifyAudit(source)).toMatchObject({ ok: true, checked: 10, problems: [] })
      } finally {
        DatabaseSync.prototype.prepare = prepare
      }
    } else {
      const query = pg.Client.prototype.query
      pg.Client.prototype.query = async function (this: pg.Client, ...args: unknown[]) {
        if (!trimmed && isPage(args[0])) {
          trimmed = true
          const writer = new pg.Client({ connectionString: SHARED_POSTGRES })
          await writer.connect()
          await writer.query(`BEGIN; ${trim(`${schema}.audit_records`).join('; ')}; COMMIT`)
          await writer.end()
        }
        return (query as (...a: unknown[]) => unknown).apply(this, args)
      } as typeof query
      try {
        expect(await verifyAudit(source)).toMatchObject({ ok: true, checked: 10, problems: [] })
      } finally {
        pg.Client.prototype.query = query
      }
    }
    expect(trimmed).toBe(true)
    // The trim stands, and the next verify starts where it left the chain.
    expect(await verifyAudit(source)).toMatchObject({ ok: true, checked: 5, problems: [] })
  })
})
