// Found by the audit probe: each admin API read of a PostgreSQL audit log (GET /api/audit, the
// console's figures and pages) took a connection of its own, as many as callers asked at once.
// While the reads were slow (a large log, a locked table), a read-only caller's 30 searches held 30
// of the server's connections — max_connections is 100 by default, shared with the gateway's sink,
// its datasets and every other instance. The gateway now has at most a few reads open at once; the
// others wait for one to end, and all are answered.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startLockableAuditLog, type LockableAuditLog } from '../helpers/locked-audit-log.ts'
import { waitFor } from '../helpers/wait.ts'

const READ_TOKEN = 'pg-read-slots-read-token-0123456789'
let log: LockableAuditLog

beforeAll(async () => {
  log = await startLockableAuditLog('readslots', { token: `${READ_TOKEN}-admin`, read_token: READ_TOKEN }, '20s')
}, 30_000)

afterAll(async () => {
  await log?.close()
}, 60_000)

/** Reads of the audit table waiting for its lock: each holds a connection of the server. */
const waiting = () => log.waitingReads()

it('holds a few of the server\'s connections for a read-only caller\'s many reads, and answers them all', async () => {
  await log.lock()
  const paths = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? '/api/audit?limit=5' : i % 3 === 1 ? '/api/overview?since=1h' : '/api/audit/page'))
  const reads = paths.map((path) => request(`${log.gw.adminUrl}${path}`, { headers: { authorization: `Bearer ${READ_TOKEN}` } }).then(async (res) => {
    await res.body.dump()
    return res.statusCode
  }, (err: unknown) => String(err)))
  await waitFor(async () => (await waiting()) > 0, 'the reads to wait for the lock')
  // Given the time to open more, it does not.
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  expect(await waiting()).toBeLessThanOrEqual(4)
  await log.unlock()
  expect(await Promise.all(reads)).toEqual(paths.map(() => 200))
  await waitFor(async () => (await waiting()) === 0, 'no read left')
}, 60_000)
