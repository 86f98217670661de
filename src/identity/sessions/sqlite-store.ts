// Sessions in a SQLite file (node:sqlite, WAL): one host. Several gateway processes and `bouncer
// sessions` share the file. Records read are kept in memory, and every request first asks SQLite
// whether another connection has written the file since (`PRAGMA data_version`): if so the kept
// records are dropped and read again, so a revocation or sign-out written by any process is seen
// by all at their next request. Measured on the loaded 2-core bench host: the version check 5 µs,
// against 13 µs for the row read and 2 µs for parsing its claims; a kept record is also the same
// object each time, so its identity is built once. The check is made once per turn of the event
// loop: the requests read from their sockets in one poll arrived together, before any write
// committed after the check began. Besides sessions, one row: the sign-in state cookies' key.
import { randomBytes } from 'node:crypto'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { addMissingColumns, createLru, makeDirectories, storeFile, switchToWal, whenUnlocked } from '../../collections/index.ts'
import { IdleTimeout, SessionStoreError, SESSIONS_PER_PERSON, type SessionRecord, type SessionStore } from './store.ts'

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, issuer TEXT NOT NULL, subject TEXT NOT NULL, claims TEXT NOT NULL,
    created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    refresh_at INTEGER, sealed TEXT, audience TEXT NOT NULL DEFAULT 'gateway', idle_until INTEGER
  );
  -- A person's sessions, oldest first: the ones past SESSIONS_PER_PERSON end at a sign-in.
  CREATE INDEX IF NOT EXISTS sessions_person ON sessions (issuer, subject, created_at);
  CREATE TABLE IF NOT EXISTS keys (name TEXT PRIMARY KEY, value TEXT NOT NULL);
  -- Who refreshes a session's tokens now, until when (claimRefresh): one process at a time.
  CREATE TABLE IF NOT EXISTS refresh_claims (id TEXT PRIMARY KEY, until INTEGER NOT NULL);
  -- Sign-ins under way were rows here, one per page load without a session (an adversarial probe):
  -- they are in the browser's state cookie now (sign-in-state.ts).
  DROP TABLE IF EXISTS pending_sign_ins;
`
const SWEEP_MS = 60_000
/**
 * How long a call waits for another process's write lock (`bouncer sessions revoke`, another
 * gateway) before it fails: between tries on timers (whenUnlocked), not in SQLite's busy handler.
 */
const LOCK_WAIT_MS = 5_000
/** Records kept in memory at most (least recently used out first). */
const KEPT_RECORDS = 10_000

interface Row {
  id: string
  issuer: string
  subject: string
  claims: string
  created_at: number
  last_seen_at: number
  expires_at: number
  refresh_at: number | null
  sealed: string | null
  audience: string
  idle_until: number | null
}

const COLUMNS = 'id, issuer, subject, claims, created_at, last_seen_at, expires_at, refresh_at, sealed, audience, idle_until'

export function openSqliteSessionStore(path: string, idleMs: number): SessionStore {
  let db: DatabaseSync
  try {
    makeDirectories(dirname(path))
    db = new DatabaseSync(path)
  } catch (err) {
    throw new SessionStoreError(`cannot open the session store ${path}: ${(err as Error).message}`, { cause: err })
  }
  const { refused, prepare } = storeFile(db, path, { the: 'the session store', a: 'a session store' }, (message, cause) => new SessionStoreError(message, { cause }))
  try {
    // Opening may wait for the lock (it runs once, before serving); the calls below never do.
    db.exec('PRAGMA busy_timeout = 5000')
    switchToWal(db)
    db.exec(SCHEMA)
    // A store written before sessions named their sign-in: its sessions count as the gateway's (a
    // console user signs in to the console once more).
    // One written before sessions kept their idle end: NULL, its sessions judged by this process's
    // idle timeouts only (store.ts, IdleTimeout).
    addMissingColumns(db, 'sessions', [
      { name: 'audience', definition: "audience TEXT NOT NULL DEFAULT 'gateway'" },
      { name: 'idle_until', definition: 'idle_until INTEGER' },
    ])
    db.exec('PRAGMA busy_timeout = 0')
  } catch (err) {
    throw refused(err)
  }
  const byId = prepare(`SELECT ${COLUMNS} FROM sessions WHERE id = ?`)
  const all = prepare(`SELECT ${COLUMNS} FROM sessions WHERE expires_at > ? AND last_seen_at > ? ORDER BY created_at DESC, id`)
  const upsert = prepare(`INSERT OR REPLACE INTO sessions (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  // The idle end goes with the later use (SET reads the row as it was): a use recorded meanwhile by another process keeps its own.
  const update = prepare(`UPDATE sessions SET issuer = ?1, subject = ?2, claims = ?3, created_at = ?4, expires_at = ?5, refresh_at = ?6, sealed = ?7, audience = ?8,
    idle_until = CASE WHEN last_seen_at < ?9 THEN ?10 ELSE idle_until END, last_seen_at = MAX(last_seen_at, ?9) WHERE id = ?11`)
  const touch = prepare('UPDATE sessions SET idle_until = CASE WHEN last_seen_at < ?1 THEN ?2 ELSE idle_until END, last_seen_at = MAX(last_seen_at, ?1) WHERE id = ?3')
  const remove = prepare('DELETE FROM sessions WHERE id = ?')
  const beyondCap = prepare(`DELETE FROM sessions WHERE id IN (
    SELECT id FROM sessions WHERE issuer = ? AND subject = ? ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ${SESSIONS_PER_PERSON}
  ) RETURNING id`)
  const readSignInKey = prepare("SELECT value FROM keys WHERE name = 'sign-in'")
  // Two processes making it at once: the first one's stays, and both read it back.
  const addSignInKey = prepare("INSERT OR IGNORE INTO keys (name, value) VALUES ('sign-in', ?)")
  const sweepSessions = prepare('DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ? OR idle_until <= ?')
  const claim = prepare('INSERT INTO refresh_claims (id, until) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET until = excluded.until WHERE refresh_claims.until <= ?')
  const sweepClaims = prepare('DELETE FROM refresh_claims WHERE until <= ?')
  const release = prepare('DELETE FROM refresh_claims WHERE id = ? AND until = ?')
  const version = prepare('PRAGMA data_version')
  version.setReturnArrays(true)
  // data_version moves when another connection commits; this connection's own writes update `kept`.
  const dataVersion = () => (version.get() as unknown as [number])[0]
  const kept = createLru<SessionRecord>(KEPT_RECORDS)
  let keptVersion = -1
  let checkedThisTurn = false
  const nextTurn = () => {
    checkedThisTurn = false
  }
  const idle = new IdleTimeout(idleMs)
  const sweep = setInterval(() => {
    const now = Date.now()
    try {
      sweepSessions.run(now, idle.sweepBefore(now), idle.openedAt)
      sweepClaims.run(now)
    } catch {
      // busy or closed: the next sweep tries again
    }
  }, SWEEP_MS).unref()

  const failed = (err: unknown) => new SessionStoreError(`the session store ${path} failed: ${(err as Error).message}`, { cause: err })
  const guard = <T>(work: () => T): T | Promise<T> => whenUnlocked(work, LOCK_WAIT_MS, failed)

  /** A kept record, unless another connection has written since this turn of the event loop began; else the row. */
  function read(id: string): SessionRecord | undefined {
    const now = Date.now()
    if (!checkedThisTurn) {
      const current = dataVersion()
      if (current !== keptVersion) {
        kept.clear()
        keptVersion = current
      }
      checkedThisTurn = true
      setImmediate(nextTurn)
    }
    const hit = kept.get(id, now)
    if (hit) return hit
    const row = byId.get(id) as Row | undefined
    if (!row) return undefined
    const record = fromRow(row)
    kept.set(id, record, record.expiresAt)
    return record
  }

  return {
    kind: 'sqlite',
    location: path,
    get(id) {
      // WAL readers hardly ever meet a lock (a checkpoint restarting the log): then the read waits as writes do.
      return guard(() => read(id))
    },
    async put(r) {
      const ended = await guard(() => {
        upsert.run(r.id, r.issuer, r.subject, JSON.stringify(r.claims), r.createdAt, r.lastSeenAt, r.expiresAt, r.refreshAt, r.sealed, r.audience, r.idleUntil ?? null)
        return beyondCap.all(r.issuer, r.subject) as unknown as Array<{ id: string }>
      })
      // This connection's own delete does not move data_version: the ended ones leave `kept` here.
      for (const { id } of ended) kept.delete(id)
      kept.set(r.id, r, r.expiresAt)
    },
    async update(r) {
      const changed = await guard(() => Number(update.run(r.issuer, r.subject, JSON.stringify(r.claims), r.createdAt, r.expiresAt, r.refreshAt, r.sealed, r.audience, r.lastSeenAt, r.idleUntil ?? null, r.id).changes) > 0)
      // Re-read at the next get: last_seen_at may be later than the record's (another process's touch).
      kept.delete(r.id)
      return changed
    },
    async claimRefresh(id, until, now) {
      return await guard(() => Number(claim.run(id, until, now).changes) > 0)
    },
    async releaseRefresh(claim, until) {
      await guard(() => release.run(claim, until))
    },
    async touch(id, at) {
      const until = at + idle.ms
      await guard(() => touch.run(at, until, id))
      const record = kept.get(id, at)
      if (record && record.lastSeenAt < at) kept.set(id, { ...record, lastSeenAt: at, idleUntil: until }, record.expiresAt)
    },
    async delete(id) {
      kept.delete(id)
      return await guard(() => Number(remove.run(id).changes) > 0)
    },
    async list(now) {
      return await guard(() => (all.all(now, now - idle.ms) as unknown as Row[]).map(fromRow).filter((record) => !idle.ended(record, now)))
    },
    async signInKey() {
      return await guard(() => {
        let row = readSignInKey.get() as { value: string } | undefined
        if (row === undefined) {
          addSignInKey.run(randomBytes(32).toString('base64url'))
          row = readSignInKey.get() as { value: string }
        }
        return Buffer.from(row.value, 'base64url')
      })
    },
    // A local file, opened before the first request.
    status: () => 'ready',
    answeredOnce: () => true,
    idle,
    async close() {
      clearInterval(sweep)
      if (db.isOpen) db.close()
    },
  }
}

function fromRow(row: Row): SessionRecord {
  return {
    id: row.id,
    issuer: row.issuer,
    subject: row.subject,
    claims: JSON.parse(row.claims) as Record<string, unknown>,
    createdAt: Number(row.created_at),
    lastSeenAt: Number(row.last_seen_at),
    expiresAt: Number(row.expires_at),
    refreshAt: row.refresh_at === null ? null : Number(row.refresh_at),
    sealed: row.sealed,
    audience: row.audience === 'console' ? 'console' : 'gateway',
    ...(row.idle_until === null ? {} : { idleUntil: Number(row.idle_until) }),
  }
}
