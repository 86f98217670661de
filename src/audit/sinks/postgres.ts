// The shared audit sink: PostgreSQL, for several gateway instances. Each instance writes its own
// chain (`chain` column) so instances never wait on each other; `audit verify` checks each chain.
// The schema is created and migrated by the gateway; a batch is one INSERT … SELECT FROM unnest().
import type pg from 'pg'
import { loadPg, withAdvisoryLock } from '../../collections/index.ts'
import { ADDED_FIELDS, columnDefinition, columnOf, FIELD_KINDS, FIELD_SPECS, type FieldSpec } from '../fields.ts'
import type { AuditRecord } from '../record.ts'
import { checkedHead } from '../chain-head.ts'
import type { Checkpoint } from '../checkpoint.ts'
import { rowColumns, sinkName, type AuditSink, type CutSigner, type SinkHead, type StoredRow } from './sink.ts'

/** A read's bound when the sink's `read_timeout` is not given (the config's default). */
const READ_TIMEOUT_MS = 30_000

/**
 * A connection for one read of the log (a search, the console's figures): bounded in time, so that
 * reads whose callers gave up (a locked table, a slow disk) do not pile up on the server, whose
 * connections the sink and the datasets share. The server ends the statement (`statement_timeout`);
 * the client gives up 5 s later should the server not answer at all. The console's verify is bounded
 * so, statement by statement; `bouncer audit verify` is not.
 */
export function auditReader(url: string, timeoutMs = READ_TIMEOUT_MS): pg.Client {
  return new (loadPg().Client)({ connectionString: url, connectionTimeoutMillis: 5_000, statement_timeout: timeoutMs, query_timeout: timeoutMs + 5_000 })
}

/**
 * The admin API's reads of the log this thread has open at once: more wait for one to end. Each
 * took a connection of its own, as many as callers asked at once: a read-only caller's 30 searches
 * while the reads were slow (a large log, a locked table) held 30 of the server's connections
 * (max_connections is 100 by default), which the sink, the datasets and the other instances share (a probe).
 */
const READS_AT_ONCE = 4
let readsOpen = 0
const readsWaiting: Array<() => void> = []

/** A slot is handed from a read that ends to the next waiting one, so none is taken twice. */
function endRead(): void {
  const next = readsWaiting.shift()
  if (next) next()
  else readsOpen--
}

/** auditReader, connected once one of READS_AT_ONCE is free; its end() frees it. */
export async function connectAuditReader(url: string, timeoutMs = READ_TIMEOUT_MS): Promise<pg.Client> {
  if (readsOpen < READS_AT_ONCE) readsOpen++
  else await new Promise<void>((resolve) => readsWaiting.push(resolve))
  const client = auditReader(url, timeoutMs)
  client.on('error', () => {}) // a connection lost mid-read: the query fails and says so, rather than an uncaught event
  let open = true
  const end = client.end.bind(client)
  client.end = (async () => {
    try {
      await end()
    } finally {
      if (open) endRead()
      open = false
    }
  }) as pg.Client['end']
  try {
    await client.connect()
  } catch (err) {
    await client.end().catch(() => {})
    throw err
  }
  return client
}

const SCHEMA_VERSION = 4

// The record's columns are the field table's (fields.ts): a new schema gets them all here, one made
// before a field was added gets its column from addMissingColumns.
function migrations(schema: string): Record<number, string> {
  return {
    1: `
      CREATE TABLE ${schema}.audit_records (
        chain TEXT NOT NULL, seq BIGINT NOT NULL,
        ${FIELD_SPECS.map((field) => columnDefinition(field, 'postgres')).join(', ')},
        PRIMARY KEY (chain, seq)
      );
      CREATE INDEX audit_time ON ${schema}.audit_records (time);
      CREATE INDEX audit_subject ON ${schema}.audit_records (subject, time);
      CREATE INDEX audit_route ON ${schema}.audit_records (route, time);
      CREATE INDEX audit_decision ON ${schema}.audit_records (decision, time);
      CREATE TABLE ${schema}.audit_checkpoint (chain TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
    `,
    // audit_checkpoint is where retention left a chain; this one is its signed head (checkpoint.ts).
    2: `
      CREATE TABLE ${schema}.audit_head_checkpoints (
        chain TEXT PRIMARY KEY, count BIGINT NOT NULL, id TEXT NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL, kid TEXT NOT NULL, sig TEXT NOT NULL
      );
    `,
    // Retention's cut, signed (checkpoint.ts): a row left before this stays, unsigned, until the
    // chain's next cut replaces it (verify notes it meanwhile).
    3: `
      ALTER TABLE ${schema}.audit_checkpoint ADD COLUMN newest TEXT, ADD COLUMN time TEXT, ADD COLUMN kid TEXT, ADD COLUMN sig TEXT;
    `,
    // The retention the cut was made under, signed with it: verify judges an early cut by it.
    4: `
      ALTER TABLE ${schema}.audit_checkpoint ADD COLUMN retention_ms BIGINT;
    `,
  }
}

/**
 * Creates the schema and applies the migrations it lacks (serialized by an advisory lock). A step
 * that fails is rolled back and its own error thrown: without the ROLLBACK, the unlock ran inside
 * the aborted transaction and its "current transaction is aborted" (25P02) replaced the step's
 * error ("must be owner of table audit_checkpoint" on an upgrade under a role that does not own the
 * tables), and the connection went back to the pool still in that transaction, holding the lock.
 */
export async function migratePostgres(client: pg.PoolClient | pg.Client, schema: string): Promise<void> {
  await withAdvisoryLock(client, `bouncer-audit:${schema}`, async () => {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.audit_meta (version INTEGER NOT NULL)`)
    const { rows } = await client.query(`SELECT version FROM ${schema}.audit_meta`)
    let version = rows[0] ? Number(rows[0].version) : 0
    if (!rows[0]) await client.query(`INSERT INTO ${schema}.audit_meta (version) VALUES (0)`)
    const steps = migrations(schema)
    while (version < SCHEMA_VERSION) {
      version++
      const step = version
      await inClientTransaction(client, async () => {
        await client.query(steps[step] as string)
        await client.query(`UPDATE ${schema}.audit_meta SET version = $1`, [step])
      })
    }
    await addMissingColumns(client, schema)
    // The console's aggregates (aggregate.ts): a time range read from the index alone (after
    // addMissingColumns, as it names an added field).
    await client.query(`CREATE INDEX IF NOT EXISTS audit_console ON ${schema}.audit_records (time)
      INCLUDE (decision, code, route, subject, duration_ms, upstream_ms)`)
  })
}

/**
 * A schema made before a field was added gets its column in place (its records read as null).
 * Under the migration lock, and only when one is missing: ALTER TABLE waits for every writer.
 */
async function addMissingColumns(client: pg.PoolClient | pg.Client, schema: string): Promise<void> {
  const { rows } = await client.query('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2', [schema, 'audit_records'])
  const columns = new Set((rows as Array<{ column_name: string }>).map((row) => row.column_name))
  const missing = ADDED_FIELDS.filter((field) => !columns.has(field.name))
  if (missing.length === 0) return
  await client.query(`ALTER TABLE ${schema}.audit_records ${missing.map((field) => `ADD COLUMN IF NOT EXISTS ${columnDefinition(field, 'postgres')}`).join(', ')}`)
}

/** Runs `work` in a transaction on one pooled connection: committed, or rolled back when it throws. */
async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  try {
    return await inClientTransaction(client, () => work(client))
  } finally {
    client.release()
  }
}

/** `work` in a transaction on `client`: committed, or rolled back (quietly: a connection gone cannot) when it throws, its own error thrown. */
async function inClientTransaction<T>(client: pg.ClientBase, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN')
  try {
    const result = await work()
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}

/** A column read back (pg returns BIGINT as text, TIMESTAMPTZ as Date); a column an older schema lacks reads as null. */
function fromColumn(field: FieldSpec, value: unknown): unknown {
  if (field.kind === 'roles') return value ?? []
  if (value === null || value === undefined) return null
  if (field.kind === 'time') return value instanceof Date ? value.toISOString() : value
  if (field.kind === 'integer' || field.kind === 'count' || field.kind === 'number') return Number(value)
  return value
}

/** A row read back into a record. */
export function recordFromPgRow(row: Record<string, unknown>): AuditRecord {
  const record: Record<string, unknown> = {}
  for (const field of FIELD_SPECS) record[field.name] = fromColumn(field, row[field.name])
  return record as AuditRecord
}

export function createPostgresSink(options: { url: string; schema: string; writeTimeoutMs?: number }): AuditSink {
  const { schema } = options
  const pool = new (loadPg().Pool)({ connectionString: options.url, max: 2, connectionTimeoutMillis: 5_000, query_timeout: 15_000 })
  pool.on('error', () => {}) // an idle client lost with the server: the next write fails and spills
  // One the sink holds (a transaction, the schema's migration) emits its loss on itself, which
  // pg-pool hears only while the client is idle or in pool.query: unheard, it ended the audit worker
  // with the records it held (a probe stopping PostgreSQL). The call on it fails all the same.
  pool.on('connect', (client) => client.on('error', () => {}))
  // Every column as an array parameter; roles travels as text and becomes JSONB in the SELECT.
  const columns = [['chain', 'text'], ['seq', 'bigint'], ...FIELD_SPECS.map((field) => [columnOf(field), FIELD_KINDS[field.kind].postgres])]
  const names = columns.map(([column]) => column)
  const params = columns.map(([, type], i) => `$${i + 1}::${type === 'jsonb' ? 'text' : type}[]`)
  const selected = columns.map(([column, type]) => (type === 'jsonb' ? `t.${column}::jsonb` : `t.${column}`))
  const insert = `INSERT INTO ${schema}.audit_records (${names.join(', ')})
    SELECT ${selected.join(', ')} FROM unnest(${params.join(', ')}) AS t(${names.join(', ')})
    ON CONFLICT (chain, seq) DO NOTHING`

  /** The last record of a chain (checked), else its retention checkpoint; null when there is neither. */
  async function headIn(db: pg.Pool | pg.PoolClient, chain: string): Promise<SinkHead | null> {
    const last = await db.query(`SELECT * FROM ${schema}.audit_records WHERE chain = $1 ORDER BY seq DESC LIMIT 1`, [chain])
    const row = last.rows[0] as Record<string, unknown> | undefined
    if (row) return checkedHead(Number(row.seq), () => recordFromPgRow(row))
    const checkpoint = await db.query(`SELECT seq, hash FROM ${schema}.audit_checkpoint WHERE chain = $1`, [chain])
    return checkpoint.rows[0] ? { seq: Number(checkpoint.rows[0].seq), hash: checkpoint.rows[0].hash as string, id: null, problem: null } : null
  }

  /** Keeps a chain's signed checkpoint, the latest per chain (a lower count never replaces a higher one). */
  async function keepCheckpoint(db: pg.Pool | pg.PoolClient, c: Checkpoint): Promise<void> {
    await db.query(
      `INSERT INTO ${schema}.audit_head_checkpoints AS h (chain, count, id, hash, time, kid, sig) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (chain) DO UPDATE SET count = excluded.count, id = excluded.id, hash = excluded.hash, time = excluded.time, kid = excluded.kid, sig = excluded.sig
       WHERE excluded.count >= h.count`,
      [c.chain, c.count, c.id, c.hash, c.time, c.kid, c.sig],
    )
  }

  return {
    name: sinkName({ type: 'postgres', schema }),
    writeTimeoutMs: options.writeTimeoutMs,
    async open() {
      const client = await pool.connect()
      try {
        await migratePostgres(client, schema)
        client.release()
      } catch (err) {
        client.release(true) // not back to the pool: a failed migration may have left it broken or mid-transaction
        throw err
      }
    },
    async head(chain): Promise<SinkHead | null> {
      return headIn(pool, chain)
    },
    async write(rows: readonly StoredRow[]) {
      const arrays: unknown[][] = columns.map(() => [])
      for (const stored of rows) {
        const row = [stored.chain, stored.seq, ...rowColumns(stored)]
        for (let i = 0; i < row.length; i++) (arrays[i] as unknown[]).push(row[i])
      }
      await pool.query(insert, arrays)
    },
    async append(chain, build, sign) {
      return inTransaction(pool, async (client) => {
        // Writers of one chain wait for each other here (no row to lock before the chain's first).
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`bouncer-audit-chain:${schema}:${chain}`])
        const row = { chain, ...build(await headIn(client, chain)) }
        const inserted = await client.query(insert, [row.chain, row.seq, ...rowColumns(row)].map((value) => [value]))
        if (inserted.rowCount !== 1) throw new Error(`record ${row.seq} of chain ${chain} is already there`)
        // The new head, signed in the record's transaction: the chain is anchored as soon as it is longer.
        if (sign) await keepCheckpoint(client, sign(row))
        return row
      })
    },
    async checkpoint(c) {
      await keepCheckpoint(pool, c)
    },
    async ping() {
      await pool.query('SELECT 1')
    },
    async deleteBefore(timeMs, sign: CutSigner) {
      // Every chain, including those of instances that no longer run; one instance at a time.
      return inTransaction(pool, async (client) => {
        const locked = await client.query('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [`bouncer-retention:${schema}`])
        if (!locked.rows[0]?.ok) return 0
        // Each chain loses the records before its first one still in the window: records are numbered
        // as requests end, so an old-started long request's record can follow younger ones, which stay.
        const lasts = await client.query(
          `SELECT r.chain, r.seq, r.hash FROM (
             SELECT chain, coalesce((SELECT min(k.seq) - 1 FROM ${schema}.audit_records k WHERE k.chain = o.chain AND k.time >= $1), max(seq)) AS cut
             FROM ${schema}.audit_records o WHERE time < $1 GROUP BY chain
           ) c JOIN ${schema}.audit_records r ON r.chain = c.chain AND r.seq = c.cut`,
          [new Date(timeMs)],
        )
        let deleted = 0
        for (const last of lasts.rows as Array<{ chain: string; seq: string; hash: string }>) {
          // Signed, so that a row written by hand (the oldest records deleted outside retention) shows.
          const newest = await client.query(`SELECT max(time) AS time FROM ${schema}.audit_records WHERE chain = $1 AND seq <= $2`, [last.chain, last.seq])
          const cut = sign({ chain: last.chain, seq: Number(last.seq), hash: last.hash, newest: (newest.rows[0].time as Date).toISOString() })
          await client.query(
            `INSERT INTO ${schema}.audit_checkpoint (chain, seq, hash, newest, retention_ms, time, kid, sig) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (chain) DO UPDATE SET
              seq = excluded.seq, hash = excluded.hash, newest = excluded.newest, retention_ms = excluded.retention_ms, time = excluded.time, kid = excluded.kid, sig = excluded.sig`,
            [last.chain, last.seq, last.hash, cut.newest, cut.retention ?? null, cut.time, cut.kid, cut.sig],
          )
          const result = await client.query(`DELETE FROM ${schema}.audit_records WHERE chain = $1 AND seq <= $2`, [last.chain, last.seq])
          deleted += result.rowCount ?? 0
        }
        return deleted
      })
    },
    async close() {
      await pool.end()
    },
  }
}
