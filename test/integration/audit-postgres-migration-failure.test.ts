// A PostgreSQL audit schema whose migration step fails (here step 3 meets a column a hand already
// added; in the field, an upgrade under a role that does not own the tables): the sink's open is
// refused with that step's error, not with the "current transaction is aborted" the unlock used to
// meet inside the failed step's transaction, and the migration lock is released, so another
// gateway's open is not kept waiting. Once the schema is put right, the same sink opens.
import pg from 'pg'
import { afterAll, expect, it } from 'vitest'
import { createPostgresSink, migratePostgres } from '../../src/audit/sinks/postgres.ts'
import { dropSchema, SHARED_POSTGRES, uniqueSchema } from '../helpers/postgres.ts'

const schema = uniqueSchema('migration_failure')
afterAll(() => dropSchema(SHARED_POSTGRES, schema))

async function withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: SHARED_POSTGRES })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

it('a failing migration step is reported as itself, the lock released and the connection not kept', async () => {
  // A schema as version 2 left it, but with step 3's first column already there.
  await withClient(async (client) => {
    await migratePostgres(client, schema)
    await client.query(`ALTER TABLE ${schema}.audit_checkpoint DROP COLUMN time, DROP COLUMN kid, DROP COLUMN sig, DROP COLUMN retention_ms`)
    await client.query(`UPDATE ${schema}.audit_meta SET version = 2`)
  })

  const sink = createPostgresSink({ url: SHARED_POSTGRES, schema })
  try {
    const refused = await sink.open().then(() => null, (err: unknown) => err as Error & { code?: string })
    expect(refused).not.toBeNull()
    expect(refused?.message).toMatch(/column "newest" of relation "audit_checkpoint" already exists/)
    expect(refused?.code).toBe('42701')

    // The migration lock is free: another gateway's migration takes it at once.
    await withClient(async (client) => {
      const { rows } = await client.query('SELECT pg_try_advisory_lock(hashtext($1)) AS got', [`bouncer-audit:${schema}`])
      expect(rows[0].got).toBe(true)
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`bouncer-audit:${schema}`])
      // The step left nothing half-done: still version 2.
      expect((await client.query(`SELECT version FROM ${schema}.audit_meta`)).rows).toEqual([{ version: 2 }])
      // Put right by hand; the sink opens, and the migration reaches the current version.
      await client.query(`ALTER TABLE ${schema}.audit_checkpoint DROP COLUMN newest`)
    })
    await sink.open()
    await withClient(async (client) => {
      expect((await client.query(`SELECT version FROM ${schema}.audit_meta`)).rows).toEqual([{ version: 4 }])
    })
  } finally {
    await sink.close()
  }
})

it('migratePostgres on a client it was given: the step\'s error, and the client still usable', async () => {
  const other = `${schema}_b`
  try {
    await withClient(async (client) => {
      await client.query(`CREATE SCHEMA ${other}`)
      await client.query(`CREATE TABLE ${other}.audit_meta (version INTEGER NOT NULL)`)
      await client.query(`INSERT INTO ${other}.audit_meta (version) VALUES (3)`)
      await client.query(`CREATE TABLE ${other}.audit_checkpoint (chain TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL, retention_ms BIGINT)`)
      await expect(migratePostgres(client, other)).rejects.toThrow(/column "retention_ms" of relation "audit_checkpoint" already exists/)
      // Not left inside the failed transaction.
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    })
  } finally {
    await dropSchema(SHARED_POSTGRES, other)
  }
})
