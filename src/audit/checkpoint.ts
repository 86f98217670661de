// Signed checkpoints of a chain's head: what makes deleting the newest records visible. A hash
// chain proves the order and integrity of what is there, but a chain cut short is still a valid
// chain. Every `audit.checkpoint_interval` (and at shutdown) the audit worker signs the chain's
// committed head — its record count, the head record's id and hash, the time — with the gateway's
// own Ed25519 key (checkpoint-key.ts), and keeps it apart from the records: appended to the
// checkpoint file, in each sink's audit_head_checkpoints table, and on GET /api/audit/head.
// `bouncer audit verify` then names the records a log lacks against its latest checkpoint.
import { sign, verify, type KeyObject } from 'node:crypto'
import { closeSync, fstatSync, fsyncSync, openSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { threadId } from 'node:worker_threads'
import { dirname, join } from 'node:path'
import type { AuditConfig } from '../config/index.ts'
import type { Checkpoint, RetentionCut } from './chain-shapes.ts'
import type { ChainHead } from './sinks/sink.ts'
import { makeDirectories, openRegularFileToWrite, readRegularFile, whyNotRead } from '../collections/index.ts'

export type { Checkpoint, RetentionCut } from './chain-shapes.ts'

/** The checkpoint file: audit.checkpoint_path, else beside the first SQLite log, else in spill_dir. */
export function checkpointPathOf(config: AuditConfig): string {
  if (config.checkpoint_path) return config.checkpoint_path
  const sqlite = config.sinks.find((sink) => sink.type === 'sqlite')
  return sqlite ? `${sqlite.path}.checkpoints` : join(config.spill_dir, 'checkpoints.ndjson')
}

function signedBytes(c: Omit<Checkpoint, 'sig'>): Buffer {
  return Buffer.from(JSON.stringify({ chain: c.chain, count: c.count, hash: c.hash, id: c.id, kid: c.kid, time: c.time }))
}

export function signCheckpoint(chain: string, head: ChainHead & { id: string }, key: { kid: string; privateKey: KeyObject }, now = new Date()): Checkpoint {
  const unsigned = { chain, count: head.seq, id: head.id, hash: head.hash, time: now.toISOString(), kid: key.kid }
  return { ...unsigned, sig: sign(null, signedBytes(unsigned), key.privateKey).toString('base64url') }
}

/**
 * 'unknown key' when no key of `keys` has the kid, 'bad signature' when the signature does not
 * verify over `bytes` (a signature or key that cannot be used at all included), else null.
 */
function signatureProblem(bytes: Buffer, kid: string, sig: string, keys: ReadonlyMap<string, KeyObject>): 'unknown key' | 'bad signature' | null {
  const key = keys.get(kid)
  if (!key) return 'unknown key'
  try {
    return verify(null, bytes, key, Buffer.from(sig, 'base64url')) ? null : 'bad signature'
  } catch {
    return 'bad signature'
  }
}

/** Whether a checkpoint is signed by one of `keys` (signatureProblem). */
export function checkpointProblem(checkpoint: Checkpoint, keys: ReadonlyMap<string, KeyObject>): 'unknown key' | 'bad signature' | null {
  const { sig, ...unsigned } = checkpoint
  return signatureProblem(signedBytes(unsigned), checkpoint.kid, sig, keys)
}

/** A cut as retention makes it, before it is signed. */
export type UnsignedCut = Pick<RetentionCut, 'chain' | 'seq' | 'hash' | 'newest' | 'retention'>

// `cut: 'retention'` keeps a cut's signed bytes apart from a head checkpoint's. A cut without
// `retention` (signed before it was) has the bytes it had: JSON.stringify leaves the key out.
function cutBytes(c: Omit<RetentionCut, 'sig'>): Buffer {
  return Buffer.from(JSON.stringify({ chain: c.chain, cut: 'retention', hash: c.hash, kid: c.kid, newest: c.newest, retention: c.retention, seq: c.seq, time: c.time }))
}

export function signCut(cut: UnsignedCut, key: { kid: string; privateKey: KeyObject }, now = new Date()): RetentionCut {
  const unsigned = { chain: cut.chain, seq: cut.seq, hash: cut.hash, newest: cut.newest, retention: cut.retention, time: now.toISOString(), kid: key.kid }
  return { ...unsigned, sig: sign(null, cutBytes(unsigned), key.privateKey).toString('base64url') }
}

/** As checkpointProblem, for a retention cut. */
export function cutProblem(cut: RetentionCut, keys: ReadonlyMap<string, KeyObject>): 'unknown key' | 'bad signature' | null {
  const { sig, ...unsigned } = cut
  return signatureProblem(cutBytes(unsigned), cut.kid, sig, keys)
}

/**
 * A sink's retention row (chain named, seq, hash and the signed columns) as a cut, or null when it
 * carries no signature: a row left by a gateway before signed cuts, or written by hand. A row with
 * a signature but a column missing or mangled still reads as a cut, which its signature then fails.
 */
export function cutFrom(row: Record<string, unknown>): RetentionCut | null {
  if (typeof row.sig !== 'string' || row.sig === '') return null
  const text = (v: unknown) => (typeof v === 'string' ? v : '')
  // pg answers BIGINT as text; a row cut before the column was signed has none.
  const retention = row.retention_ms === null || row.retention_ms === undefined ? undefined : Number(row.retention_ms)
  return { chain: text(row.chain), seq: Number(row.seq), hash: text(row.hash), newest: text(row.newest), retention, time: text(row.time), kid: text(row.kid), sig: row.sig }
}

const HASH = /^[0-9a-f]{64}$/

/** A checkpoint read back from a file or a table, or null when it is not one. */
export function checkpointFrom(value: unknown): Checkpoint | null {
  if (typeof value !== 'object' || value === null) return null
  const c = value as Record<string, unknown>
  const text = (v: unknown) => typeof v === 'string' && v !== ''
  const count = typeof c.count === 'string' ? Number(c.count) : c.count // pg answers BIGINT as text
  if (!text(c.chain) || !Number.isSafeInteger(count) || (count as number) < 1 || !text(c.id) || typeof c.hash !== 'string' || !HASH.test(c.hash)) return null
  if (!text(c.time) || !text(c.kid) || !text(c.sig)) return null
  return { chain: c.chain as string, count: count as number, id: c.id as string, hash: c.hash, time: c.time as string, kid: c.kid as string, sig: c.sig as string }
}

/** Past this size the file keeps only the latest checkpoint of each chain (the only one verify needs). */
const COMPACT_BYTES = 1 << 20

/** A compaction's lock older than this was left by a thread that died during one: taken over. */
const STALE_LOCK_MS = 30_000

/**
 * Appends a checkpoint (fsynced), compacting the file when it has grown large: the latest of each
 * chain that `keys` verify survives (a forged line must not push a genuine one out). With
 * server.workers every worker's audit thread appends to this one file: a compaction is one
 * thread's at a time (a lock file), through a temporary file of its own, and an append that landed
 * in the file a compaction was replacing is made again in the new one (a probe: a checkpoint could
 * be lost, and two compactions wrote one temporary file).
 */
export function appendCheckpoint(path: string, checkpoint: Checkpoint, keys: ReadonlyMap<string, KeyObject>): void {
  makeDirectories(dirname(path))
  const line = `${JSON.stringify(checkpoint)}\n`
  for (let tries = 0; ; tries++) {
    const appendedTo = writeDurably(path, 'a', line)
    // A compaction under way may have read the file before this line: once it has renamed its
    // result over the file, the line is made again there if it went to the file replaced.
    waitWhileCompacting(path)
    if (tries >= 3 || statSync(path).ino === appendedTo) break
  }
  if (statSync(path).size > COMPACT_BYTES) compact(path, keys)
}

/** A compaction takes milliseconds: waits for the one under way, at most COMPACTION_WAIT_MS (its thread may have died). */
const COMPACTION_WAIT_MS = 2_000
const pause = new Int32Array(new SharedArrayBuffer(4))

function waitWhileCompacting(path: string): void {
  const until = performance.now() + COMPACTION_WAIT_MS
  while (compacting(`${path}.compacting`) && performance.now() < until) Atomics.wait(pause, 0, 0, 5)
}

/** A lock that is there and not stale. */
function compacting(lock: string): boolean {
  try {
    return Date.now() - statSync(lock).mtimeMs < STALE_LOCK_MS
  } catch {
    return false
  }
}

function compact(path: string, keys: ReadonlyMap<string, KeyObject>): void {
  const lock = `${path}.compacting`
  try {
    closeSync(openSync(lock, 'wx'))
  } catch {
    try {
      if (compacting(lock)) return // another thread compacts it now
      unlinkSync(lock)
      closeSync(openSync(lock, 'wx'))
    } catch {
      return
    }
  }
  try {
    const latest = latestByChain(readCheckpointFile(path).checkpoints.filter((c) => checkpointProblem(c, keys) === null))
    const temporary = `${path}.${process.pid}.${threadId}.tmp`
    writeDurably(temporary, 'w', [...latest.values()].map((c) => `${JSON.stringify(c)}\n`).join(''))
    renameSync(temporary, path)
  } finally {
    rmSync(lock, { force: true }) // taken over meanwhile, as stale: already gone
  }
}

/**
 * Writes and fsyncs; answers the inode written to. Only to a regular file: a named pipe put at the
 * checkpoint path held the audit worker's thread in a plain open for ever, and every record with it
 * (an operations report); it is refused now, and the worker logs it once, its sinks still written.
 */
function writeDurably(path: string, flags: 'a' | 'w', text: string): number {
  const fd = openRegularFileToWrite(path, flags === 'a' ? 'append' : 'truncate')
  try {
    writeSync(fd, text)
    fsyncSync(fd)
    return fstatSync(fd).ino
  } finally {
    closeSync(fd)
  }
}

/** The checkpoint file is there but cannot be read (a directory in its place, no right to read it…): the operator's to see to. */
export class CheckpointFileUnreadable extends Error {}

/** Far more than the file holds: past COMPACT_BYTES it keeps one checkpoint per chain. */
const MAX_CHECKPOINT_FILE_BYTES = 64 * 1024 * 1024

/** Every checkpoint of the file, and how many lines were not one (none when there is no file). */
export function readCheckpointFile(path: string): { checkpoints: Checkpoint[]; damaged: number } {
  // Read as any file, a named pipe as audit.checkpoint_path held the thread reading it for ever
  // (found by an adversarial probe): only a regular file of a bounded size is read.
  const read = readRegularFile(path, MAX_CHECKPOINT_FILE_BYTES)
  if (!read.ok) {
    if (read.reason === 'error' && read.error.code === 'ENOENT') return { checkpoints: [], damaged: 0 }
    throw new CheckpointFileUnreadable(`cannot read the checkpoint file ${path}: ${whyNotRead(read, MAX_CHECKPOINT_FILE_BYTES)}`)
  }
  const text = read.bytes.toString('utf8')
  const checkpoints: Checkpoint[] = []
  let damaged = 0
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    let checkpoint: Checkpoint | null = null
    try {
      checkpoint = checkpointFrom(JSON.parse(line))
    } catch {
      // counted below
    }
    if (checkpoint) checkpoints.push(checkpoint)
    else damaged++
  }
  return { checkpoints, damaged }
}

/** The checkpoint with the highest count of each chain. */
export function latestByChain(checkpoints: readonly Checkpoint[]): Map<string, Checkpoint> {
  const latest = new Map<string, Checkpoint>()
  for (const c of checkpoints) if ((latest.get(c.chain)?.count ?? 0) <= c.count) latest.set(c.chain, c)
  return latest
}
