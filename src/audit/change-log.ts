// Records of changes made outside a running gateway: `bouncer keys`, `sessions` and `secrets`
// change credential stores from the command line. Each change is one ordinary audit record (the
// fields of fields.ts, hashed by record.ts), written into every sink that keeps records, in a chain
// of its own: one per host (`cli:<host>`), which every command run there appends to. The head is
// read and the record written under the sink's own lock (sinks' `append`), so commands at once, and
// gateways writing their own chains into the same file or schema, never break a chain.
//
// A change chain is anchored as a gateway's is (checkpoint.ts), when its writer holds the gateway's
// checkpoint key (ChangeSigner): the admin API's writer, in the gateway, does; the command line
// does where it can read the key (the secrets store, or the key file). Each record's transaction
// also keeps the new head, signed, in the sink's audit_head_checkpoints table, and once it has
// committed in the first sink (the one `audit verify` reads) the checkpoint is appended to the
// checkpoint file, kept apart: deleting a change chain's newest records then shows. Without the
// key the chain stays unanchored (verify notes it; --strict does not fail it).
import { createPrivateKey, createPublicKey, randomUUID, type JsonWebKey } from 'node:crypto'
import { resolve } from 'node:path'
import type { AuditConfig } from '../config/index.ts'
import { truncateClientValue } from '../errors/index.ts'
import { appendCheckpoint, checkpointPathOf, signCheckpoint } from './checkpoint.ts'
import { existingSigningKey, type KeyStore } from './checkpoint-key.ts'
import { chain, GENESIS_HASH, type AuditRecord, type RecordInput } from './record.ts'
import { createPostgresSink } from './sinks/postgres.ts'
import type { Checkpoint } from './chain-shapes.ts'
import type { AuditSink, StoredRow } from './sinks/sink.ts'
import { createSqliteSink } from './sinks/sqlite.ts'

/** The audit log cannot take records now (a sink that does not open or answer). */
export class AuditUnavailable extends Error {}

/** A credential change made outside the request path (the command line, the admin API), for its record. */
export interface ChangeMade {
  method: string
  /** The command or request path as recorded: never a secret in it (a key's id, not the key). */
  path: string
  /** What the change did, in a sentence (and why, where a reason was given). */
  detail: string
  /** Who made it, as the record names a caller. */
  actor: { issuer: string; subject: string; credential: NonNullable<RecordInput['credential']>; roles: string[] }
  /** The API key the change is about (as a request made with it records it). */
  keyId?: string
  sourceIp: string
  userAgent: string | null
  /** performance.now() when the change began. */
  started: number
}

/** The record of a change, in the chain `chainId` (its `instance`): one id names the record and the request. */
export function changeRecord(change: ChangeMade, chainId: string): RecordInput {
  const id = randomUUID()
  return {
    id, time: new Date().toISOString(), request_id: id, method: change.method, path: truncateClientValue(change.path, 2048),
    status: 200, decision: 'allow', detail: truncateClientValue(change.detail, 1024),
    ...change.actor, subject: truncateClientValue(change.actor.subject, 256),
    client_id: change.keyId ?? null, source_ip: change.sourceIp, user_agent: change.userAgent === null ? null : truncateClientValue(change.userAgent, 512),
    duration_ms: Math.round((performance.now() - change.started) * 1000) / 1000, bytes_in: 0, bytes_out: 0, instance: chainId,
  }
}

/** The gateway's checkpoint key (plain data: it crosses to the query thread) and the checkpoint file. */
export interface ChangeSigner {
  key: { kid: string; jwk: JsonWebKey }
  file: string
}

/** Whether the config has a sink that keeps records (SQLite, PostgreSQL): where a change chain can be. */
export function keepsRecords(config: AuditConfig): boolean {
  return config.sinks.some((sink) => sink.type === 'sqlite' || sink.type === 'postgres')
}

/** The signer of a change chain, where the gateway's key is kept and readable; null (no anchoring) otherwise. */
export function changeSignerOf(config: AuditConfig, store: KeyStore | null): ChangeSigner | null {
  const file = resolve(checkpointPathOf(config))
  const key = existingSigningKey(store, `${file}.key`)
  return key ? { key, file } : null
}

export interface ChangeLog {
  /** The sinks written to, by name (`sqlite:/path`, `postgres:schema`). */
  readonly sinks: readonly string[]
  /** Why the last record's checkpoint is not in the checkpoint file (it cannot be written), else null. */
  readonly unanchored: string | null
  /** Appends the record to the chain in every sink; the record as the first sink stored it. */
  append(input: RecordInput): Promise<AuditRecord>
  close(): Promise<void>
}

/**
 * Opens the sinks that keep records (SQLite, PostgreSQL), creating or migrating their schema as a
 * gateway does; null when the config has none (no sink, or stdout only: a line on this command's
 * stdout would reach no log shipper). Throws AuditUnavailable when one cannot be opened.
 */
export async function openChangeLog(config: AuditConfig, chainId: string, signer: ChangeSigner | null = null): Promise<ChangeLog | null> {
  const sinks: AuditSink[] = config.sinks.flatMap((sink) => {
    if (sink.type === 'sqlite') return [createSqliteSink(resolve(sink.path), { durable: true })]
    if (sink.type === 'postgres') return [createPostgresSink({ url: sink.url, schema: sink.schema })]
    return []
  })
  if (sinks.length === 0) return null
  const closeAll = () => Promise.all(sinks.map((sink) => sink.close().catch(() => {})))
  for (const sink of sinks) {
    try {
      await sink.open()
    } catch (err) {
      await closeAll()
      throw new AuditUnavailable(`the audit sink ${sink.name} cannot be opened: ${(err as Error).message}`)
    }
  }
  const key = signer ? { kid: signer.key.kid, privateKey: createPrivateKey({ key: signer.key.jwk as never, format: 'jwk' }) } : null
  const ownKeys = key ? new Map([[key.kid, createPublicKey(key.privateKey)]]) : new Map()
  let unanchored: string | null = null
  return {
    sinks: sinks.map((sink) => sink.name),
    get unanchored() {
      return unanchored
    },
    async append(input) {
      let first: AuditRecord | undefined
      let firstCheckpoint: Checkpoint | undefined
      // Each sink holds the chain as far as it took it: the record links to that sink's own head.
      for (const sink of sinks) {
        try {
          let signed: Checkpoint | undefined
          const sign = key ? (row: StoredRow) => (signed = signCheckpoint(chainId, { seq: row.seq, hash: row.record.hash, id: row.record.id }, key)) : undefined
          const row = await (sink.append as NonNullable<AuditSink['append']>)(chainId, (head) => ({
            seq: (head?.seq ?? 0) + 1,
            record: chain(input, head?.hash || GENESIS_HASH),
          }), sign)
          first ??= row.record
          if (sink === sinks[0]) firstCheckpoint = signed
        } catch (err) {
          throw new AuditUnavailable(`the audit sink ${sink.name} did not take the record: ${(err as Error).message}`)
        }
      }
      // The file holds the checkpoint of the sink verify reads; a later sink's chain may differ from it.
      unanchored = null
      if (signer && firstCheckpoint) {
        try {
          appendCheckpoint(signer.file, firstCheckpoint, ownKeys)
        } catch (err) {
          unanchored = `the checkpoint file ${signer.file} cannot be written (${(err as Error).message})`
        }
      }
      return first as AuditRecord
    },
    async close() {
      await closeAll()
    },
  }
}

/**
 * Opens the change log, appends the record to the chain `chainId` in every sink that keeps records,
 * and closes it (one change, as the admin API makes them); nothing when the config keeps none.
 * Answers why the checkpoint file did not take the record's checkpoint, if it did not.
 * Throws AuditUnavailable when a sink cannot be opened or does not take the record.
 */
export async function appendChange(config: AuditConfig, chainId: string, input: RecordInput, signer: ChangeSigner | null = null): Promise<string | null> {
  const log = await openChangeLog(config, chainId, signer)
  if (log === null) return null
  try {
    await log.append(input)
    return log.unanchored
  } finally {
    await log.close()
  }
}
