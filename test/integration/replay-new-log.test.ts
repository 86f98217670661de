// POST /api/replay on a gateway whose SQLite audit log had no tables yet answered 500
// internal_error: the audit worker makes the file, then its tables, and a replay asked in between
// met "the audit log … has no records yet", which replay alone did not read as an empty log (the
// console's other reads did). Found as a flake of workers-admin-generation, whose replay came right
// after `bouncer serve` started (1 start in 30 here, on a loaded host).
import { mkdtemp, rm } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const ADMIN = 'replay-new-log-admin-token-0123456789'
let dir: string | undefined
let gateway: TestGateway | undefined

afterAll(async () => {
  await gateway?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('a log whose tables are not made yet replays as empty, not as an internal error', async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-replay-new-log-'))
  const path = join(dir, 'audit.db')
  // The file made, its tables not yet: held there by another writer, so the worker waits to make them.
  const holder = new DatabaseSync(path)
  holder.exec('PRAGMA journal_mode = WAL')
  holder.exec('BEGIN IMMEDIATE')
  try {
    const config = { admin: { token: ADMIN }, audit: { sinks: [{ type: 'sqlite', path }] }, routes: [] }
    gateway = await startTestGateway(config)
    const res = await request(`${gateway.adminUrl}/api/replay`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ config: stringify(config), hours: 1 }),
    })
    const body = (await res.body.json()) as Record<string, unknown>
    expect(res.statusCode, JSON.stringify(body)).toBe(200)
    expect(body).toMatchObject({ ok: true, scanned: 0, distinct: 0, changes: [] })
  } finally {
    holder.exec('ROLLBACK')
    holder.close()
  }
})
