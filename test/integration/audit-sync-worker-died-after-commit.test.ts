// From the team's notes: with `durability: sync`, an audit worker that committed a batch to its
// sink and then ended (a crash, its heap limit) before it said so failed every response waiting on
// the batch (503 audit_unavailable) and counted the batch as dropped, though its records were in the
// sink: the client saw a 503 for a request whose record says it was served. The replacement worker
// now says what every sink holds when it starts, and the batch is settled by that: stored, its
// responses go as they were; not stored (the worker ended before the sink's commit), 503 and counted.
//
// The worker ends for real (process.exit in the thread), put there through the inspector protocol
// at the moment under test; the sinks are a real SQLite file and the machine's PostgreSQL.
import { mkdtemp, rm } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import pg from 'pg'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { closedPort } from '../helpers/faults.ts'
import { evaluateInWorker } from '../helpers/inspector.ts'
import { closeAfterEach, upstreamForFile } from '../helpers/lifecycle.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { metricValue, waitFor } from '../helpers/wait.ts'

let dir: string
const upstream = upstreamForFile((req, res) => void res.end(`served ${req.url}`))
const closeLater = closeAfterEach()
const schema = uniqueSchema('sync_died')

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-sync-died-'))
})
afterAll(async () => {
  await dropSchema(SHARED_POSTGRES, schema).catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

type Sink = { type: 'sqlite'; path: string } | { type: 'postgres'; url: string; schema: string }

/** A gateway under durability: sync with one public route; closed after the test. */
async function syncGateway(...sinks: Sink[]): Promise<TestGateway> {
  const gw = await startTestGateway({
    // No checkpoint or retention write while the test watches the worker's writes.
    audit: { sinks, spill_dir: join(await mkdtemp(join(dir, 'spill-')), 'spill'), durability: 'sync', checkpoint_interval: '1h' },
    upstreams: [{ name: 'api', url: upstream().url }],
    routes: [{ id: 'hello', path: '/hello/*', upstream: 'api', public: true }],
  })
  closeLater(() => gw.close())
  return gw
}

/** The worker's end, in its own thread, at one of three moments of a request's batch. */
const ENDS = {
  // The sinks have the batch; the thread ends as it would say so.
  'after the commit': "const port = process.getBuiltinModule('node:worker_threads').parentPort; const post = port.postMessage.bind(port); port.postMessage = (m, t) => { if (m.type === 'committed' && m.id !== null) process.exit(3); return post(m, t) }; 'armed'",
  // Numbered (the chain's state names it), ended as SQLite's transaction begins.
  'before the commit': "const { DatabaseSync } = process.getBuiltinModule('node:sqlite'); const exec = DatabaseSync.prototype.exec; DatabaseSync.prototype.exec = function (sql) { if (sql.startsWith('BEGIN')) process.exit(3); return exec.call(this, sql) }; 'armed'",
  // The batch arrives and the thread ends before reading it.
  'before numbering': "const port = process.getBuiltinModule('node:worker_threads').parentPort; port.removeAllListeners('message'); port.on('message', (m) => { if (m.type === 'batch') process.exit(3) }); 'armed'",
}

/** Ends the worker at `when` of the next batch; `after`: a request stored first (the chain under way in the sink). */
async function endAuditWorker(gw: TestGateway, when: keyof typeof ENDS, after?: string): Promise<void> {
  await waitFor(() => gw.state.audit.head() !== null, 'the audit worker ready')
  if (after !== undefined) expect((await get(`${gw.url}${after}`)).status).toBe(200)
  const session = new Session()
  session.connect()
  try {
    await evaluateInWorker(session, '/audit/worker', ENDS[when])
  } finally {
    session.disconnect()
  }
}

/** Holds the next audit worker that starts (the replacement) before it runs anything, until release(). */
async function holdNextAuditWorker(): Promise<{ held: Promise<void>; release(): Promise<void> }> {
  const session = new Session()
  session.connect()
  let sessionId = ''
  let released = false
  const held = new Promise<void>((resolve) => {
    session.on('NodeWorker.attachedToWorker', ({ params }) => {
      if (!params.waitingForDebugger || !params.workerInfo.url.includes('/audit/worker')) return
      sessionId = params.sessionId
      resolve()
    })
  })
  await session.post('NodeWorker.enable', { waitForDebuggerOnStart: true })
  return {
    held,
    async release() {
      if (released) return
      released = true
      await session.post('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id: 1, method: 'Runtime.runIfWaitingForDebugger' }) })
      await session.post('NodeWorker.disable')
      session.disconnect()
    },
  }
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await request(url)
  return { status: res.statusCode, text: await res.body.text() }
}

const dropped = (gw: TestGateway) => metricValue(gw.adminUrl, 'bouncer_audit_dropped_total')

/** The settling's log line (the worker's replacement said what the sinks hold). */
function settledLine(gw: TestGateway): Record<string, unknown> | undefined {
  const line = gw.logs.find((l) => l.includes('the records the stopped audit worker had not confirmed are settled'))
  return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>)
}

function sqliteRows(path: string, like: string): unknown[] {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    return db.prepare('SELECT path, status, code FROM audit_records WHERE path LIKE ? ORDER BY chain, seq').all(like)
  } finally {
    db.close()
  }
}

async function postgresRows(like: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: SHARED_POSTGRES })
  await client.connect()
  try {
    return (await client.query(`SELECT path, status, code FROM ${schema}.audit_records WHERE path LIKE $1 ORDER BY chain, seq`, [like])).rows
  } finally {
    await client.end()
  }
}

describe('durability: sync, an audit worker that ends after its sink committed the batch', () => {
  it('SQLite: the client gets the upstream\'s 200, the record is stored once, nothing is counted as dropped', async () => {
    const db = join(dir, 'after-commit.db')
    const gw = await syncGateway({ type: 'sqlite', path: db })
    await endAuditWorker(gw, 'after the commit')
    const answer = await get(`${gw.url}/hello/stored`)
    expect(answer).toEqual({ status: 200, text: 'served /hello/stored' })
    expect(settledLine(gw)).toMatchObject({ level: 'info', stored: 1, lost: 0 })
    expect(await dropped(gw)).toBe(0)
    // The replacement writes on after it.
    expect((await get(`${gw.url}/hello/after`)).status).toBe(200)
    await gw.close()
    expect(sqliteRows(db, '/hello/%')).toEqual([{ path: '/hello/stored', status: 200, code: null }, { path: '/hello/after', status: 200, code: null }])
  })

  it('PostgreSQL: the same', async () => {
    const gw = await syncGateway({ type: 'postgres', url: SHARED_POSTGRES, schema })
    await endAuditWorker(gw, 'after the commit')
    const answer = await get(`${gw.url}/hello/stored-pg`)
    expect(answer).toEqual({ status: 200, text: 'served /hello/stored-pg' })
    expect(settledLine(gw)).toMatchObject({ level: 'info', stored: 1, lost: 0 })
    expect(await dropped(gw)).toBe(0)
    await gw.close()
    expect(await postgresRows('/hello/stored-pg')).toEqual([{ path: '/hello/stored-pg', status: 200, code: null }])
  })
})

describe('durability: sync, an audit worker that ends before its sink has the batch', () => {
  for (const when of ['before the commit', 'before numbering'] as const) {
    it(`${when}: the client gets 503 audit_unavailable, the record is lost and counted, and the 503 is recorded`, async () => {
      const db = join(dir, `${when.replaceAll(' ', '-')}.db`)
      const gw = await syncGateway({ type: 'sqlite', path: db })
      await endAuditWorker(gw, when, '/hello/first')
      const answer = await get(`${gw.url}/hello/lost`)
      expect(answer.status).toBe(503)
      expect(JSON.parse(answer.text)).toMatchObject({ code: 'audit_unavailable' })
      expect(await dropped(gw)).toBe(1)
      if (when === 'before the commit') expect(settledLine(gw)).toMatchObject({ level: 'error', stored: 0, lost: 1 })
      await gw.close()
      expect(sqliteRows(db, '/hello/%')).toEqual([{ path: '/hello/first', status: 200, code: null }, { path: '/hello/lost', status: 503, code: 'audit_unavailable' }])
    })
  }

  it('with a second sink away (spilling): the chain\'s head names the batch, but the replacement cannot vouch for that sink, so 503 and counted', async () => {
    // The state file is written as records are numbered, and with a sink away the replacement
    // continues from it: its head is past the batch that SQLite never committed.
    const db = join(dir, 'one-sink-away.db')
    const gw = await syncGateway({ type: 'sqlite', path: db }, { type: 'postgres', url: `postgres://postgres@127.0.0.1:${await closedPort()}/test`, schema })
    await endAuditWorker(gw, 'before the commit', '/hello/first')
    const answer = await get(`${gw.url}/hello/lost-with-one-away`)
    expect(answer.status).toBe(503)
    expect(settledLine(gw)).toMatchObject({ level: 'error', stored: 0, lost: 1 })
    expect(await dropped(gw)).toBe(1)
    await gw.close()
    expect(sqliteRows(db, '/hello/%')).toEqual([{ path: '/hello/first', status: 200, code: null }, { path: '/hello/lost-with-one-away', status: 503, code: 'audit_unavailable' }])
  })

})

describe('durability: sync, a replacement that is slow to start', () => {
  it('the batch waits for it 10 s at most, then is counted lost (its response\'s 503 is recorded once the replacement runs)', async () => {
    const db = join(dir, 'replacement-held.db')
    const gw = await syncGateway({ type: 'sqlite', path: db })
    await endAuditWorker(gw, 'after the commit')
    const replacement = await holdNextAuditWorker()
    closeLater(() => replacement.release())
    const started = Date.now()
    const answered = get(`${gw.url}/hello/unconfirmed`)
    await replacement.held
    await waitFor(() => settledLine(gw) !== undefined, 'the batch settled without its replacement', 15_000)
    expect(Date.now() - started).toBeGreaterThanOrEqual(10_000)
    expect(settledLine(gw)).toMatchObject({ level: 'error', stored: 0, lost: 1, msg: expect.stringContaining('did not say within 10000 ms') })
    expect(await dropped(gw)).toBe(1)
    // The refusal's own record waits for a worker, as it did before.
    await replacement.release()
    expect((await answered).status).toBe(503)
    await gw.close()
    // The batch's record was stored after all (at least once), and the refusal's beside it.
    expect(sqliteRows(db, '/hello/%')).toEqual([{ path: '/hello/unconfirmed', status: 200, code: null }, { path: '/hello/unconfirmed', status: 503, code: 'audit_unavailable' }])
  }, 30_000)
})
