// The shared audit sink: PostgreSQL, for several gateway instances. Each instance writes its own
// chain (`chain` column) so instances never wait on each other; `audit verify` checks each chain.
// The schema is created and migrated by the gateway; a batch is one INSERT … SELECT FROM unnest().
import { createRequire } from 'node:module'
import type pg from 'pg'
import type { AuditRecord } from '../record.ts'
import { checkedHead } from '../chain-head.ts'
import type { AuditSink, SinkHead, StoredRow } from './sink.ts'

/** pg, loaded on first use: it adds ~5 MB of heap to a gateway without a PostgreSQL sink. */
export const loadPg = (): typeof pg => createRequire(import.meta.url)('pg') as typeof pg

const SCHEMA_VERSION = 2

function migrations(schema: string): Record<number, string> {
  return {
    1: `
      CREATE TABLE ${schema}.audit_records (
        chain TEXT NOT NULL, seq BIGINT NOT NULL,
        id TEXT NOT NULL, time TIMESTAMPTZ NOT NULL, request_id TEXT, trace_id TEXT, method TEXT, path TEXT, route TEXT,
        status INTEGER, decision TEXT, code TEXT, detail TEXT, statement TEXT, issuer TEXT, subject TEXT,
        client_id TEXT, roles JSONB, source_ip TEXT, user_agent TEXT, upstream TEXT, upstream_status INTEGER,
        duration_ms DOUBLE PRECISION, bytes_in BIGINT, bytes_out BIGINT, "limit" TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
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
  }
}

/** Creates the schema and applies the migrations it lacks (serialized by an advisory lock). */
export async function migratePostgres(client: pg.PoolClient | pg.Client, schema: string): Promise<void> {
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [`bouncer-audit:${schema}`])
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.audit_meta (version INTEGER NOT NULL)`)
    const { rows } = await client.query(`SELECT version FROM ${schema}.audit_meta`)
    let version = rows[0] ? Number(rows[0].version) : 0
    if (!rows[0]) await client.query(`INSERT INTO ${schema}.audit_meta (version) VALUES (0)`)
    const steps = migrations(schema)
    while (version < SCHEMA_VERSION) {
      version++
      await client.query('BEGIN')
      await client.query(steps[version] as string)
      await client.query(`UPDATE ${schema}.audit_meta SET version = $1`, [version])
      await client.query('COMMIT')
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`bouncer-audit:${schema}`])
  }
}

const INSERT_COLUMNS = [
  ['chain', 'text'], ['seq', 'bigint'], ['id', 'text'], ['time', 'timestamptz'], ['request_id', 'text'], ['trace_id', 'text'],
  ['method', 'text'], ['path', 'text'], ['route', 'text'], ['status', 'integer'], ['decision', 'text'], ['code', 'text'],
  ['detail', 'text'], ['statement', 'text'], ['issuer', 'text'], ['subject', 'text'], ['client_id', 'text'], ['roles', 'jsonb'],
  ['source_ip', 'text'], ['user_agent', 'text'], ['upstream', 'text'], ['upstream_status', 'integer'], ['duration_ms', 'double precision'],
  ['bytes_in', 'bigint'], ['bytes_out', 'bigint'], ['"limit"', 'text'], ['prev_hash', 'text'], ['hash', 'text'],
] as const

/** A row read back into a record (pg returns BIGINT as text, TIMESTAMPTZ as Date). */
export function recordFromPgRow(row: Record<string, unknown>): AuditRecord {
  return {
    id: row.id as string,
    time: (row.time as Date).toISOString(),
    request_id: row.request_id as string,
    trace_id: (row.trace_id as string | null) ?? null,
    method: row.method as string,
    path: row.path as string,
    route: (row.route as string | null) ?? null,
    status: Number(row.status),
    decision: row.decision as AuditRecord['decision'],
    code: (row.code as string | null) ?? null,
    detail: (row.detail as string | null) ?? null,
    statement: (row.statement as string | null) ?? null,
    issuer: (row.issuer as string | null) ?? null,
    subject: (row.subject as string | null) ?? null,
    client_id: (row.client_id as string | null) ?? null,
    roles: (row.roles as string[] | null) ?? [],
    source_ip: row.source_ip as string,
    user_agent: (row.user_agent as string | null) ?? null,
    upstream: (row.upstream as string | null) ?? null,
    upstream_status: row.upstream_status === null ? null : Number(row.upstream_status),
    duration_ms: Number(row.duration_ms),
    bytes_in: Number(row.bytes_in),
    bytes_out: Number(row.bytes_out),
    limit: (row.limit as string | null) ?? null,
    prev_hash: row.prev_hash as string,
    hash: row.hash as string,
  }
}

export function createPostgresSink(options: { url: string; schema: string }): AuditSink {
  const { schema } = options
  const pool = new (loadPg().Pool)({ connectionString: options.url, max: 2, connectionTimeoutMillis: 5_000, query_timeout: 15_000 })
  pool.on('error', () => {}) // an idle client lost with the server: the next write fails and spills
  // Every column as an array parameter; roles travels as text and becomes JSONB in the SELECT.
  const names = INSERT_COLUMNS.map(([column]) => column)
  const params = INSERT_COLUMNS.map(([, type], i) => `$${i + 1}::${type === 'jsonb' ? 'text' : type}[]`)
  const selected = INSERT_COLUMNS.map(([column, type]) => (type === 'jsonb' ? `t.${column}::jsonb` : `t.${column}`))
  const insert = `INSERT INTO ${schema}.audit_records (${names.join(', ')})
    SELECT ${selected.join(', ')} FROM unnest(${params.join(', ')}) AS t(${names.join(', ')})
    ON CONFLICT (chain, seq) DO NOTHING`

  return {
    name: `postgres:${schema}`,
    async open() {
      const client = await pool.connect()
      try {
        await migratePostgres(client, schema)
      } finally {
        client.release()
      }
    },
    async head(chain): Promise<SinkHead | null> {
      const last = await pool.query(`SELECT * FROM ${schema}.audit_records WHERE chain = $1 ORDER BY seq DESC LIMIT 1`, [chain])
      const row = last.rows[0] as Record<string, unknown> | undefined
      if (row) return checkedHead(Number(row.seq), () => recordFromPgRow(row))
      const checkpoint = await pool.query(`SELECT seq, hash FROM ${schema}.audit_checkpoint WHERE chain = $1`, [chain])
      return checkpoint.rows[0] ? { seq: Number(checkpoint.rows[0].seq), hash: checkpoint.rows[0].hash as string, id: null, problem: null } : null
    },
    async write(rows: readonly StoredRow[]) {
      const columns: unknown[][] = INSERT_COLUMNS.map(() => [])
      for (const { chain, seq, record } of rows) {
        const values = [
          chain, seq, record.id, record.time, record.request_id, record.trace_id, record.method, record.path, record.route,
          record.status, record.decision, record.code, record.detail, record.statement, record.issuer, record.subject,
          record.client_id, JSON.stringify(record.roles), record.source_ip, record.user_agent, record.upstream, record.upstream_status,
          record.duration_ms, record.bytes_in, record.bytes_out, record.limit, record.prev_hash, record.hash,
        ]
        for (let i = 0; i < values.length; i++) (columns[i] as unknown[]).push(values[i])
      }
      await pool.query(insert, columns)
    },
    async checkpoint(c) {
      await pool.query(
        `INSERT INTO ${schema}.audit_head_checkpoints AS h (chain, count, id, hash, time, kid, sig) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (chain) DO UPDATE SET count = excluded.count, id = excluded.id, hash = excluded.hash, time = excluded.time, kid = excluded.kid, sig = excluded.sig
         WHERE excluded.count >= h.count`,
        [c.chain, c.count, c.id, c.hash, c.time, c.kid, c.sig],
      )
    },
    async ping() {
      await pool.query('SELECT 1')
    },
    async deleteBefore(timeMs) {
      // Every chain, including those of instances that no longer run; one instance at a time.
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const locked = await client.query('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [`bouncer-retention:${schema}`])
        if (!locked.rows[0]?.ok) {
          await client.query('COMMIT')
          return 0
        }
        const lasts = await client.query(
          `SELECT DISTINCT ON (chain) chain, seq, hash FROM ${schema}.audit_records WHERE time < $1 ORDER BY chain, seq DESC`,
          [new Date(timeMs)],
        )
        let deleted = 0
        for (const last of lasts.rows as Array<{ chain: string; seq: string; hash: string }>) {
          await client.query(
            `INSERT INTO ${schema}.audit_checkpoint (chain, seq, hash) VALUES ($1, $2, $3) ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`,
            [last.chain, last.seq, last.hash],
          )
          const result = await client.query(`DELETE FROM ${schema}.audit_records WHERE chain = $1 AND seq <= $2`, [last.chain, last.seq])
          deleted += result.rowCount ?? 0
        }
        await client.query('COMMIT')
        return deleted
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        client.release()
      }
    },
    async close() {
      await pool.end()
    },
  }
}
