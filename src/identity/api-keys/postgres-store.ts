// API keys in PostgreSQL, for several gateway instances: each reads a key by its id (the primary
// key), so a revocation written by any of them, or by `bouncer keys`, is seen by all at their next
// read. The schema is created on first use (serialized by an advisory lock, as the audit sink does).
import type pg from 'pg'
import { loadPg, withAdvisoryLock } from '../../collections/index.ts'
import { ApiKeyStoreError, type ApiKeyRecord, type ApiKeyStore } from './store.ts'

const COLUMNS = 'id, principal, description, hash, created_at, expires_at, revoked_at, last_used_at'
/** Until the store has answered once, it is asked again after this, doubling up to MAX_RETRY_MS. */
const FIRST_RETRY_MS = 500
const MAX_RETRY_MS = 30_000

interface Row {
  id: string
  principal: string
  description: string | null
  hash: string
  created_at: string
  expires_at: string | null
  revoked_at: string | null
  last_used_at: string | null
}

export interface PostgresKeyStoreOptions {
  url: string
  schema: string
  /** Connections: lookups are one short query each. */
  maxConnections?: number
  /** How long a query may take before the store counts as unavailable. */
  timeoutMs?: number
}

export function openPostgresKeyStore(options: PostgresKeyStoreOptions): ApiKeyStore {
  const { schema } = options
  const table = `${schema}.api_keys`
  const readers = options.maxConnections ?? 4
  const pool = new (loadPg().Pool)({
    connectionString: options.url,
    max: readers,
    connectionTimeoutMillis: options.timeoutMs ?? 5_000,
    query_timeout: options.timeoutMs ?? 5_000,
  })
  pool.on('error', () => {}) // an idle client lost with the server: the next query fails and says so
  // One the store holds (the migration, under its lock) emits its loss on itself, which pg-pool hears
  // only while the client is idle or in pool.query; unheard, such a loss ended the audit worker (the
  // spill cap's probe, audit/sinks/postgres.ts). Not seen here — the migration's queries follow one
  // another, and a loss during one fails that query — but a loss between two would end the process.
  pool.on('connect', (client) => client.on('error', () => {}))
  const location = `${databaseOf(options.url)}, schema ${schema}`
  let ready: Promise<void> | null = null
  let state = 'connecting'
  let answered = false
  let closed = false
  let retry: NodeJS.Timeout | undefined
  const answeredNow = () => {
    answered = true
    state = 'ready'
  }
  const failedNow = (err: unknown) => {
    state = `unavailable: ${(err as Error).message}`
  }

  /** The table, created once; a failed attempt (the server away) is tried again by the next query. */
  function migrated(): Promise<void> {
    ready ??= migrate(pool, schema).catch((err: unknown) => {
      ready = null
      throw err
    })
    return ready
  }

  async function query(text: string, values: unknown[]): Promise<Row[]> {
    try {
      await migrated()
      const { rows } = await pool.query(text, values)
      answeredNow()
      return rows as Row[]
    } catch (err) {
      failedNow(err)
      throw new ApiKeyStoreError(`the API key store (PostgreSQL ${location}) cannot be read: ${(err as Error).message}`, { cause: err })
    }
  }

  // Asked at the open, and again until it answers: /readyz waits for the store's first answer and
  // says why there is none. Read only at the first key's lookup, a wrong url or a server away at the
  // start left the gateway ready, its checks silent, every API key request 503 (found by a probe).
  function firstAnswer(delay: number): void {
    migrated().then(answeredNow, (err: unknown) => {
      failedNow(err)
      if (closed || answered) return
      retry = setTimeout(() => firstAnswer(Math.min(delay * 2, MAX_RETRY_MS)), delay)
      retry.unref()
    })
  }
  firstAnswer(FIRST_RETRY_MS)

  return {
    kind: 'postgres',
    location,
    readers,
    async find(id) {
      const [row] = await query(`SELECT ${COLUMNS} FROM ${table} WHERE id = $1`, [id])
      return row && fromRow(row)
    },
    async insert(record) {
      await query(`INSERT INTO ${table} (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
        record.id, record.principal, record.description, record.hash, record.createdAt, record.expiresAt, record.revokedAt, record.lastUsedAt,
      ])
    },
    async list() {
      return (await query(`SELECT ${COLUMNS} FROM ${table} ORDER BY created_at DESC, id`, [])).map(fromRow)
    },
    async revoke(id, at) {
      const [row] = await query(`UPDATE ${table} SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING ${COLUMNS}`, [at, id])
      return row && fromRow(row)
    },
    async recordUse(uses) {
      if (uses.size === 0) return
      // One statement for the batch; GREATEST: another instance may have written a later time.
      await query(
        `UPDATE ${table} AS k SET last_used_at = GREATEST(COALESCE(k.last_used_at, 0), u.at)
         FROM unnest($1::text[], $2::bigint[]) AS u(id, at) WHERE k.id = u.id`,
        [[...uses.keys()], [...uses.values()]],
      )
    },
    status: () => state,
    answeredOnce: () => answered,
    async close() {
      closed = true
      clearTimeout(retry)
      await pool.end()
    },
  }
}

async function migrate(pool: pg.Pool, schema: string): Promise<void> {
  const client = await pool.connect()
  try {
    await withAdvisoryLock(client, `bouncer-api-keys:${schema}`, async () => {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
      await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.api_keys (
        id TEXT PRIMARY KEY, principal TEXT NOT NULL, description TEXT, hash TEXT NOT NULL,
        created_at BIGINT NOT NULL, expires_at BIGINT, revoked_at BIGINT, last_used_at BIGINT
      )`)
    })
    client.release()
  } catch (err) {
    client.release(true) // not back to the pool: it may be the connection that broke
    throw err
  }
}

/** pg returns BIGINT as text. */
function fromRow(row: Row): ApiKeyRecord {
  const time = (value: string | null) => (value === null ? null : Number(value))
  return {
    id: row.id,
    principal: row.principal,
    description: row.description,
    hash: row.hash,
    createdAt: Number(row.created_at),
    expiresAt: time(row.expires_at),
    revokedAt: time(row.revoked_at),
    lastUsedAt: time(row.last_used_at),
  }
}

/** `host:port/database` of a URL, for messages: never its user or password. */
function databaseOf(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.host}${parsed.pathname}`
  } catch {
    return 'the configured database'
  }
}
