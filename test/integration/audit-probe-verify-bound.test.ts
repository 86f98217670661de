// Found by the audit probe: the console's Verify (POST /api/audit/verify) of a PostgreSQL log read it
// on a connection with no time bound, where the searches' end at the sink's read_timeout
// (postgres-parties-leaving.test.ts). With the table locked (a migration, a VACUUM FULL, a stuck
// transaction), each Verify waited in PostgreSQL for good, its caller long gone, holding one of the
// server's connections, which the gateway's audit sink and datasets share.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startLockableAuditLog, type LockableAuditLog } from '../helpers/locked-audit-log.ts'
import { waitFor } from '../helpers/wait.ts'

const TOKEN = 'verify-bound-admin-token-0123456789'
let log: LockableAuditLog

beforeAll(async () => {
  log = await startLockableAuditLog('verifybound', { token: TOKEN }, '2s')
}, 30_000)

afterAll(async () => {
  await log?.close()
}, 60_000)

/** Reads of the audit table waiting for its lock. */
const waiting = () => log.waitingReads()

const verify = (signal?: AbortSignal) => request(`${log.gw.adminUrl}/api/audit/verify`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, signal })

it('ends a Verify whose table is locked at the sink\'s read_timeout, in PostgreSQL too', async () => {
  await log.lock()
  const asked = Date.now()
  // A caller who gives up, and one who waits for the answer.
  await verify(AbortSignal.timeout(500)).catch(() => {})
  const answered = verify(AbortSignal.timeout(10_000)) // answered, at read_timeout
  await waitFor(async () => (await waiting()) > 0, 'the verify to wait for the lock')
  const res = await answered
  expect(res.statusCode).toBeGreaterThanOrEqual(500)
  await res.body.dump()
  await waitFor(async () => (await waiting()) === 0, 'the abandoned verify to end', 15_000)
  // Ended by read_timeout (2 s), not by the client's own bound 5 s later.
  expect(Date.now() - asked).toBeLessThan(6_000)
  await log.unlock()
  // The lock gone, Verify answers.
  const after = await verify()
  expect(after.statusCode).toBe(200)
  expect(await after.body.json()).toMatchObject({ ok: true })
}, 60_000)
