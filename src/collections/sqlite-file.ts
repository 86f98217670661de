// What every SQLite file the gateway shares with other processes needs (the audit log, the session
// and approvals stores): waiting for another process's write lock without holding the event loop,
// and a column added in place to a file an older version made.
import { dirname, resolve } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { setTimeout as delay } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'

/** SQLite's primary result codes the gateway tells apart. */
export const SQLITE = { PERM: 3, BUSY: 5, LOCKED: 6, READONLY: 8, IOERR: 10, CORRUPT: 11, FULL: 13, CANTOPEN: 14, NOTADB: 26 } as const

/**
 * Whether SQLite failed to use the file (no right to write it or its folder, another process's
 * lock, the disk), as opposed to finding something else in it: "is not an API key store: attempt
 * to write a readonly database" sent the operator looking for the wrong file (a probe, as a user
 * who may only read the store).
 */
export function cannotUseFile(err: unknown): boolean {
  const code = sqliteCode(err)
  return code === SQLITE.PERM || code === SQLITE.BUSY || code === SQLITE.LOCKED || code === SQLITE.READONLY || code === SQLITE.IOERR || code === SQLITE.FULL || code === SQLITE.CANTOPEN
}

/**
 * A store file opened: its failure past the open (the schema, a statement) as the store's own
 * error, the handle closed (a failed reload must not leak it). A SQLite file with a table of that
 * name and another shape passes CREATE TABLE IF NOT EXISTS and fails at a statement: "no such
 * column: id" was an internal error of every `bouncer keys` and `sessions` command (a probe). What
 * SQLite could not do with the file (cannotUseFile) says "cannot open"; anything else, that the file
 * is not that store.
 */
export function storeFile(db: DatabaseSync, path: string, store: { the: string; a: string }, error: (message: string, cause: unknown) => Error): { refused(err: unknown): Error; prepare(sql: string): StatementSync } {
  const refused = (err: unknown): Error => {
    db.close()
    const reason = (err as Error).message
    return error(cannotUseFile(err) ? `cannot open ${store.the} ${path}: ${reason}` : `${path} is not ${store.a}: ${reason}`, err)
  }
  return {
    refused,
    prepare(sql) {
      try {
        return db.prepare(sql)
      } catch (err) {
        throw refused(err)
      }
    },
  }
}

/**
 * An error's primary SQLite result code, or null: node:sqlite gives the extended one (its low byte
 * is the primary), so CANTOPEN_ISDIR (526) or BUSY_SNAPSHOT (517) compared whole missed (a review).
 */
export function sqliteCode(err: unknown): number | null {
  const errcode = (err as { errcode?: unknown } | null)?.errcode
  return typeof errcode === 'number' ? errcode & 0xff : null
}

/** SQLITE_BUSY: another connection holds the lock this statement needs. */
export function isBusy(err: unknown): boolean {
  return sqliteCode(err) === SQLITE.BUSY
}

/** How long an opener waits for another one that is turning a new file to WAL at the same moment. */
const WAL_SWITCH_WAIT_MS = 5_000

/**
 * The file in WAL mode (kept in the file: one made before is in it already). Switching needs the
 * file to itself, and SQLite answers "database is locked" at once, without its busy handler, when
 * another opener holds it that moment (a keys command beside a starting gateway, parallel
 * `bouncer keys create` or `secrets put` on a new store, busy_timeout set or not): tried again,
 * sleeping this thread a few milliseconds between tries. Only at open, before serving.
 */
export function switchToWal(db: DatabaseSync): void {
  const deadline = Date.now() + WAL_SWITCH_WAIT_MS
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    try {
      db.exec('PRAGMA journal_mode = WAL')
      return
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw err
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait)
    }
  }
}

/**
 * The work's result at once; while another process holds the lock, a promise that tries again on
 * timers until `waitMs` have passed, then `failed(err)`. SQLite's own busy handler (busy_timeout)
 * sleeps on the calling thread: on the event loop, every request of the gateway would wait with
 * it (5.1 s for one locked call, measured). Other errors go to `failed` at once.
 */
export function whenUnlocked<T>(work: () => T, waitMs: number, failed: (err: unknown) => Error): T | Promise<T> {
  try {
    return work()
  } catch (err) {
    if (!isBusy(err)) throw failed(err)
    return retried(work, waitMs, failed)
  }
}

async function retried<T>(work: () => T, waitMs: number, failed: (err: unknown) => Error): Promise<T> {
  const deadline = Date.now() + waitMs
  for (let wait = 2; ; wait = Math.min(wait * 2, 100)) {
    await delay(wait)
    try {
      return work()
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw failed(err)
    }
  }
}

/**
 * Adds the columns a file made before they existed lacks (its rows read them as their default).
 * Checked on every open, so it is idempotent; the write lock (IMMEDIATE) and a second look under it
 * keep two processes opening the same file at once apart. Runs before serving: it may wait in
 * SQLite's busy handler.
 */
export function addMissingColumns(db: DatabaseSync, table: string, columns: ReadonlyArray<{ name: string; definition: string }>): void {
  const missing = () => {
    const present = new Set((db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((column) => column.name))
    return columns.filter((column) => !present.has(column.name))
  }
  if (missing().length === 0) return
  inTransaction(db, () => {
    for (const column of missing()) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column.definition}`)
  })
}

/**
 * Runs `work` in a transaction (under the write lock unless `begin` says otherwise), committed, or
 * rolled back when it throws. SQLite ends the transaction itself on some errors (a full disk:
 * SQLITE_FULL, some I/O errors), and a ROLLBACK then throws "cannot rollback - no transaction is
 * active" in place of the error that says what happened: an audit log on a full disk was reported
 * down for that, not for "database or disk is full".
 */
export function inTransaction<T>(db: DatabaseSync, work: () => T, begin: 'BEGIN' | 'BEGIN IMMEDIATE' = 'BEGIN IMMEDIATE'): T {
  db.exec(begin)
  try {
    const result = work()
    db.exec('COMMIT')
    return result
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK')
    throw err
  }
}

/**
 * A SQLite file opened read-only, for a reader who may read it but not write its folder (an auditor
 * of the audit log). A file in WAL mode is read through its -wal and -shm files, made beside it when
 * no writer holds them open: SQLite refused the first read ("attempt to write a readonly database"),
 * or, the files there but not this user's to open, "unable to open database file". Then the file is
 * read as it stands (SQLite's `immutable=1`: no side files, no locks), and `asItStands` is told why
 * the side files were not used (its words end "… the -wal and -shm files (why)"):
 * what is still in the -wal, not yet checkpointed into the file, is not read. A file this user may
 * not read at all fails as before, with SQLite's first answer.
 */
export function openReadOnly(path: string, asItStands: (why: string) => void): DatabaseSync {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    db.prepare('PRAGMA user_version').get() // the first read: where SQLite opens the side files
    return db
  } catch (err) {
    db.close()
    const code = sqliteCode(err)
    if (code !== SQLITE.READONLY && code !== SQLITE.CANTOPEN) throw err
    const url = pathToFileURL(resolve(path))
    url.searchParams.set('immutable', '1')
    let immutable: DatabaseSync | undefined
    try {
      immutable = new DatabaseSync(url, { readOnly: true })
      immutable.prepare('PRAGMA user_version').get()
    } catch {
      immutable?.close()
      throw err
    }
    asItStands(code === SQLITE.READONLY ? `this user may not write its folder ${dirname(resolve(path))}, where SQLite would make them` : 'this user may not open them')
    return immutable
  }
}
