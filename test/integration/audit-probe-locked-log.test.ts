// Found by the audit probe: `bouncer audit` and `bouncer audit verify` on a log another process holds
// locked. A SQLite log under another process's exclusive lock (a backup, a sqlite3 shell in a
// transaction) was said to be "database is locked (damaged, or not an audit log?)", sending the
// operator to restore a sound file; a PostgreSQL search ended at the sink's read_timeout by a
// locked table was "bouncer: internal error: canceling statement due to statement timeout", the
// gateway's bug by its words.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import pg from 'pg'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { auditRecordCount, dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
const schema = uniqueSchema('lockedlog')

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-locked-'))
})

afterAll(async () => {
  await dropSchema(SHARED_POSTGRES, schema)
  await rm(dir, { recursive: true, force: true })
})

/** A log written by a gateway (one request), the gateway stopped; the config that reads it. */
async function writtenLog(sink: Record<string, unknown>): Promise<string> {
  const upstream = await startUpstream(async (_req, res) => void res.end('ok'))
  const gw = await startTestGateway({
    audit: { sinks: [sink], spill_dir: join(dir, `spill-${String(sink.type)}`), flush_interval: '10ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  })
  try {
    const res = await fetch(`${gw.url}/open`)
    await res.arrayBuffer()
    if (sink.type === 'sqlite') await waitForAuditRecord(sink.path as string, String(res.headers.get('x-request-id')))
    else await waitFor(async () => (await auditRecordCount(SHARED_POSTGRES, schema)) === 1, 'the record')
  } finally {
    await gw.close()
    await upstream.close()
  }
  const config = join(dir, `${String(sink.type)}.yaml`)
  await writeFile(config, stringify({ audit: { sinks: [sink], spill_dir: join(dir, `spill-${String(sink.type)}`) } }))
  return config
}

it('says a SQLite log another process holds locked is locked, not damaged', async () => {
  const log = join(dir, 'audit.db')
  const config = await writtenLog({ type: 'sqlite', path: log })
  const holder = new DatabaseSync(log)
  holder.exec('PRAGMA locking_mode = EXCLUSIVE')
  holder.exec('BEGIN EXCLUSIVE')
  try {
    const line = `bouncer: cannot read the audit log ${log}: database is locked (another process holds it locked: try again once it lets go)\n`
    expect(await runCliInProcess(['audit', 'verify', '--config', config])).toEqual({ code: 1, stdout: '', stderr: line })
    expect(await runCliInProcess(['audit', '--config', config])).toEqual({ code: 1, stdout: '', stderr: line })
  } finally {
    holder.exec('ROLLBACK')
    holder.close()
  }
  // Let go, it reads.
  expect(await runCliInProcess(['audit', 'verify', '--config', config])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^ok: 1 record in 1 chain verified/) })
}, 60_000)

it('says a PostgreSQL search ended at read_timeout by a locked table so, not as an internal error', async () => {
  const config = await writtenLog({ type: 'postgres', url: SHARED_POSTGRES, schema, read_timeout: '1s' })
  const locker = new pg.Client({ connectionString: SHARED_POSTGRES })
  await locker.connect()
  try {
    await locker.query(`BEGIN; LOCK TABLE ${schema}.audit_records IN ACCESS EXCLUSIVE MODE`)
    const result = await runCliInProcess(['audit', '--config', config])
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: "bouncer: cannot read the audit log: canceling statement due to statement timeout (the sink's read_timeout, 1 s: is the table locked, or the server overloaded?)\n",
    })
  } finally {
    await locker.query('ROLLBACK').catch(() => {})
    await locker.end()
  }
}, 60_000)
