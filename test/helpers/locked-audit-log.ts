// A gateway whose audit log is a PostgreSQL schema another session can lock, as a migration, a
// VACUUM FULL or a stuck transaction would: the admin API's reads of it then wait in the server,
// and `waitingReads` counts them (each holds one of the server's connections).
import pg from 'pg'
import { startTestGateway, type TestGateway } from './gateway.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from './postgres.ts'
import { waitFor } from './wait.ts'

export interface LockableAuditLog {
  gw: TestGateway
  schema: string
  /** Holds the audit table's lock until `unlock`. */
  lock(): Promise<void>
  unlock(): Promise<void>
  /** Reads of the audit table waiting for its lock. */
  waitingReads(): Promise<number>
  close(): Promise<void>
}

export async function startLockableAuditLog(name: string, admin: Record<string, unknown>, readTimeout: string): Promise<LockableAuditLog> {
  const schema = uniqueSchema(name)
  const db = new pg.Client({ connectionString: SHARED_POSTGRES })
  const locker = new pg.Client({ connectionString: SHARED_POSTGRES })
  await db.connect()
  await locker.connect()
  const gw = await startTestGateway({ admin, audit: { sinks: [{ type: 'postgres', url: SHARED_POSTGRES, schema, read_timeout: readTimeout }] }, routes: [] })
  // The sink's schema made to its last index, which the lock would hold up.
  await waitFor(async () => (await db.query('SELECT to_regclass($1) AS t', [`${schema}.audit_console`])).rows[0].t !== null, 'the audit table')
  return {
    gw,
    schema,
    lock: async () => {
      await locker.query(`BEGIN; LOCK TABLE ${schema}.audit_records IN ACCESS EXCLUSIVE MODE`)
    },
    unlock: async () => {
      await locker.query('ROLLBACK')
    },
    waitingReads: async () => (await db.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE $1 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()", [`%FROM ${schema}.audit_records%`])).rows[0].n as number,
    async close() {
      await locker.query('ROLLBACK').catch(() => {})
      await locker.end()
      await db.end()
      await gw.close()
      await dropSchema(SHARED_POSTGRES, schema)
    },
  }
}
