// A schema's migration under a PostgreSQL session-level advisory lock, so two gateways (or a
// gateway and a command) starting at once do not both make it.
import type pg from 'pg'

/**
 * Runs `work` holding the advisory lock named `key` on `client`. When `work` fails the unlock is
 * quiet: on a connection that broke it cannot run (the connection's end releases the lock), and
 * inside a transaction the failure aborted it answers "current transaction is aborted" (25P02) —
 * either way in place of the error that says what went wrong.
 */
export async function withAdvisoryLock<T>(client: pg.ClientBase, key: string, work: () => Promise<T>): Promise<T> {
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [key])
  let result: T
  try {
    result = await work()
  } catch (err) {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key]).catch(() => {})
    throw err
  }
  await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key])
  return result
}
