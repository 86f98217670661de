// From the team's notes: an audit worker that ended after numbering its chain's very first records
// (the chain's state file names them) and before any sink stored them left a replacement that went
// on from the state file: the sinks held the chain from record N+1 with nothing before it, and
// `bouncer audit verify` failed the honest log for good ("record 1 before it is missing (deleted)").
// With no record of the chain in any sink and no checkpoint that signed one, nothing committed can
// have been deleted: the replacement starts a new chain whose first record says what was lost.
// A log emptied after its chain was checkpointed is still named by verify.
//
// The worker ends for real (process.exit in its thread, put there through the inspector protocol)
// the moment its chain's state file names a record; the sinks are a real SQLite file and the
// machine's PostgreSQL, verify the real command.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import pg from 'pg'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { evaluateInWorker } from '../helpers/inspector.ts'
import { closeAfterEach, upstreamForFile } from '../helpers/lifecycle.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

let dir: string
const upstream = upstreamForFile((req, res) => void res.end(`served ${req.url}`))
const closeLater = closeAfterEach()
const schema = uniqueSchema('first_lost')

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-first-lost-'))
})
afterAll(async () => {
  await dropSchema(SHARED_POSTGRES, schema).catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

type Sink = { type: 'sqlite'; path: string } | { type: 'postgres'; url: string; schema: string }

/** The audit section of a gateway whose log, spill and checkpoints live in `own` (they outlive it). */
function auditIn(own: string, sink: Sink): Record<string, unknown> {
  // No interval checkpoint while the test watches: the chain is signed at shutdown only.
  return { sinks: [sink], spill_dir: join(own, 'spill'), durability: 'sync', checkpoint_interval: '1h' }
}

async function gateway(audit: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startTestGateway({
    audit,
    upstreams: [{ name: 'api', url: upstream().url }],
    routes: [{ id: 'hello', path: '/hello/*', upstream: 'api', public: true }],
  })
  closeLater(() => gw.close())
  await waitFor(() => gw.state.audit.head() !== null, 'the audit worker ready')
  return gw
}

/**
 * The worker's end, in its own thread: as soon as the chain's state file names a record (written
 * when records are numbered, before any sink has them).
 */
const END_ONCE_NUMBERED = `
  const fs = process.getBuiltinModule('node:fs');
  const rename = fs.renameSync;
  fs.renameSync = function (from, to) {
    rename(from, to);
    if (String(to).endsWith('chain.json') && JSON.parse(fs.readFileSync(to, 'utf8')).seq > 0) process.exit(3);
  };
  process.getBuiltinModule('node:module').syncBuiltinESMExports();
  'armed'`

async function endAuditWorkerOnceNumbered(): Promise<void> {
  const session = new Session()
  session.connect()
  try {
    await evaluateInWorker(session, '/audit/worker', END_ONCE_NUMBERED)
  } finally {
    session.disconnect()
  }
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await request(url)
  return { status: res.statusCode, text: await res.body.text() }
}

/** `bouncer audit verify` with the gateway's audit section (the checkpoint file and its key are found from it). */
async function verify(own: string, audit: Record<string, unknown>) {
  const file = join(own, 'cli.yaml')
  await writeFile(file, stringify({ audit }))
  return runCliInProcess(['audit', 'verify', '--config', file])
}

interface Row { chain: string; seq: number; path: string; status: number; code: string | null; detail: string | null }

function sqliteRows(path: string): Row[] {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    return db.prepare('SELECT c.chain, r.seq, r.path, r.status, r.code, r.detail FROM audit_records r JOIN audit_chains c ON c.no = r.chain ORDER BY r.chain, r.seq').all() as unknown as Row[]
  } finally {
    db.close()
  }
}

async function postgresRows(): Promise<Row[]> {
  const client = new pg.Client({ connectionString: SHARED_POSTGRES })
  await client.connect()
  try {
    return (await client.query(`SELECT chain, seq::int AS seq, path, status, code, detail FROM ${schema}.audit_records ORDER BY chain, seq`)).rows as Row[]
  } finally {
    await client.end()
  }
}

const chainOf = (gw: TestGateway) => (gw.state.audit.head() as { chain: string }).chain

describe('an audit worker that ends after numbering its chain\'s first records, before any sink stored them', () => {
  const cases: Array<[string, (own: string) => Sink, (own: string) => Row[] | Promise<Row[]>]> = [
    ['SQLite', (own) => ({ type: 'sqlite', path: join(own, 'audit.db') }), (own) => sqliteRows(join(own, 'audit.db'))],
    ['PostgreSQL', () => ({ type: 'postgres', url: SHARED_POSTGRES, schema }), () => postgresRows()],
  ]
  for (const [name, sinkIn, rowsOf] of cases) {
    it(`${name}: the request is refused and counted lost, a new chain says so, and verify passes with a note`, async () => {
      const own = await mkdtemp(join(dir, 'lost-'))
      const audit = auditIn(own, sinkIn(own))
      const gw = await gateway(audit)
      const first = chainOf(gw)
      await endAuditWorkerOnceNumbered()

      const lost = await get(`${gw.url}/hello/lost`)
      expect(lost.status).toBe(503)
      expect(JSON.parse(lost.text)).toMatchObject({ code: 'audit_unavailable' })
      expect(await metricValue(gw.adminUrl, 'bouncer_audit_dropped_total')).toBe(1)
      expect((await get(`${gw.url}/hello/after`)).status).toBe(200)
      await gw.close()

      // Verify passes, naming the new chain's start; it failed the log for good ("record 1 before it is missing (deleted)").
      const verified = await verify(own, audit)
      expect(verified).toMatchObject({ code: 0, stderr: '' })
      expect(verified.stdout).toMatch(/^ok: 3 records in 1 chain verified\n/)
      expect(verified.stdout).not.toContain('missing (deleted)')

      // The old chain left nothing behind; the new one says why it began, then the refusal, then the next request.
      const rows = await rowsOf(own)
      expect(rows.map(({ seq, path, status, code }) => ({ seq, path, status, code }))).toEqual([
        { seq: 1, path: '-', status: 0, code: 'chain_restarted' },
        { seq: 2, path: '/hello/lost', status: 503, code: 'audit_unavailable' },
        { seq: 3, path: '/hello/after', status: 200, code: null },
      ])
      const [restarted] = rows as [Row]
      expect(restarted.chain).not.toBe(first)
      const why = 'the records it numbered (1) are in no sink and no checkpoint signed one'
      expect(restarted.detail).toContain(`Chain ${first} cannot be continued: ${why}`)
      expect(verified.stdout).toContain(`chain ${restarted.chain} restarted at`)
      const logged = gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => String(l.msg).includes('a new chain starts'))
      expect(logged).toMatchObject({ level: 'error', previous_chain: first, chain: restarted.chain, reason: expect.stringContaining(why) })
    })
  }
})

describe('a log emptied after its chain was checkpointed', () => {
  it('is not taken for lost records: the chain goes on where it was, and verify names the records missing before it', async () => {
    const own = await mkdtemp(join(dir, 'emptied-'))
    const db = join(own, 'audit.db')
    const audit = auditIn(own, { type: 'sqlite', path: db })
    let gw = await gateway(audit)
    const first = chainOf(gw)
    for (const path of ['/hello/a', '/hello/b']) expect((await get(`${gw.url}${path}`)).status).toBe(200)
    await gw.close() // its shutdown signs a checkpoint of records 1–2

    for (const file of [db, `${db}-wal`, `${db}-shm`]) await rm(file, { force: true })
    gw = await gateway(audit)
    expect(chainOf(gw)).toBe(first)
    expect((await get(`${gw.url}/hello/c`)).status).toBe(200)
    await gw.close()
    expect(gw.logs.some((l) => l.includes('a new chain starts'))).toBe(false)

    expect(sqliteRows(db).map(({ chain, seq, path }) => ({ chain, seq, path }))).toEqual([{ chain: first, seq: 3, path: '/hello/c' }])
    const verified = await verify(own, audit)
    expect(verified).toMatchObject({ code: 1, stdout: '' })
    expect(verified.stderr).toContain(`audit log tampered: record`)
    expect(verified.stderr).toContain(`(seq 3 of chain ${first}`)
    expect(verified.stderr).toContain('records 1–2 before it are missing (deleted)')
  })
})
