// API keys in a SQLite file (node:sqlite, WAL). Several gateways on one host may share the file:
// WAL lets them read while `bouncer keys` or another instance writes, and a writer waits for the
// lock instead of failing: on timers (whenUnlocked), not in SQLite's busy handler, which sleeps on
// the event loop.
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { ApiKeyStoreError, type ApiKeyRecord, type ApiKeyStore } from './store.ts'
import { inTransaction, makeDirectories, storeFile, switchToWal, whenUnlocked } from '../../collections/index.ts'

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL, description TEXT, hash TEXT NOT NULL,
    created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER, last_used_at INTEGER
  );
`

interface Row {
  id: string
  principal: string
  description: string | null
  hash: string
  created_at: number
  expires_at: number | null
  revoked_at: number | null
  last_used_at: number | null
}

const COLUMNS = 'id, principal, description, hash, created_at, expires_at, revoked_at, last_used_at'

/** How long a lookup or an operator's write waits for another process's write lock. */
const LOCK_WAIT_MS = 5_000

export function openSqliteKeyStore(path: string): ApiKeyStore {
  let db: DatabaseSync
  try {
    makeDirectories(dirname(path))
    db = new DatabaseSync(path)
  } catch (err) {
    throw new ApiKeyStoreError(`cannot open the API key store ${path}: ${(err as Error).message}`, { cause: err })
  }
  const { refused, prepare } = storeFile(db, path, { the: 'the API key store', a: 'an API key store' }, (message, cause) => new ApiKeyStoreError(message, { cause }))
  try {
    // Processes making the store at once (parallel `bouncer keys create`) failed at once with
    // "database is locked" at the change to WAL (found by the operator probe): it waits its turn.
    db.exec(`PRAGMA busy_timeout = ${LOCK_WAIT_MS}`)
    switchToWal(db)
    db.exec(SCHEMA)
    // Serving, a statement that meets another process's lock is tried again on timers (failing,
    // below): in the busy handler, an admin API revocation during an operator's open write
    // transaction froze every request of the gateway for 5 s (found by a probe).
    db.exec('PRAGMA busy_timeout = 0')
  } catch (err) {
    throw refused(err)
  }
  const byId = prepare(`SELECT ${COLUMNS} FROM api_keys WHERE id = ?`)
  const all = prepare(`SELECT ${COLUMNS} FROM api_keys ORDER BY created_at DESC, id`)
  const insert = prepare(`INSERT INTO api_keys (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
  const revoke = prepare('UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?')
  const used = prepare('UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?')

  /** The statement's result; its failure (another process's write lock past LOCK_WAIT_MS, the disk) as the store's. */
  const failing = <T>(work: () => T): T | Promise<T> =>
    whenUnlocked(work, LOCK_WAIT_MS, (err) => new ApiKeyStoreError(`the API key store ${path} failed: ${(err as Error).message}`, { cause: err }))
  const find = (id: string) => failing(() => {
    const row = byId.get(id) as Row | undefined
    return row && fromRow(row)
  })

  return {
    kind: 'sqlite',
    location: path,
    readers: Number.POSITIVE_INFINITY,
    async find(id) {
      return find(id)
    },
    async insert(record) {
      await failing(() => insert.run(record.id, record.principal, record.description, record.hash, record.createdAt, record.expiresAt, record.revokedAt, record.lastUsedAt))
    },
    async list() {
      return failing(() => (all.all() as unknown as Row[]).map(fromRow))
    },
    async revoke(id, at) {
      await failing(() => revoke.run(at, id))
      return find(id)
    },
    async recordUse(uses) {
      if (uses.size === 0) return
      // One transaction for the batch: one fsync, one lock, whatever the number of keys. Without
      // waiting for the lock: SQLite waits synchronously, so while another process held it (another
      // instance, `bouncer keys`, an operator's sqlite3) every request of the gateway stood still
      // for the busy timeout, every flush. A busy store fails the batch (SQLITE_BUSY): the directory
      // tries it again shortly, off the event loop, then keeps it for the next flush.
      inTransaction(db, () => {
        for (const [id, at] of uses) used.run(at, id)
      })
    },
    // Opened and read above, or the open failed: a file answers at once.
    status: () => (db.isOpen ? 'ready' : 'closed'),
    answeredOnce: () => true,
    async close() {
      if (db.isOpen) db.close()
    },
  }
}

function fromRow(row: Row): ApiKeyRecord {
  return {
    id: row.id,
    principal: row.principal,
    description: row.description,
    hash: row.hash,
    createdAt: Number(row.created_at),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
  }
}
