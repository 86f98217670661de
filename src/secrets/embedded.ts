// The embedded secrets store: SQLite (node:sqlite), every value sealed with AES-256-GCM under a
// data key that is itself sealed under the master key. Every put adds a version.
import { closeSync, existsSync, openSync, statSync, type Stats } from 'node:fs'
import { dirname } from 'node:path'
import { randomBytes } from 'node:crypto'
import { DatabaseSync } from 'node:sqlite'
import { IV_BYTES, open, seal, SecretsError, SecretStoreMissing, SecretStoreWriteFailed } from './crypto.ts'
import { invalidSecretName, SECRET_NAME, type SecretStore, type SecretVersion } from './store.ts'
import { inTransaction, isBusy, makeDirectories, SQLITE, sqliteCode, switchToWal } from '../collections/index.ts'

// data_key_seals: the data key sealed under the previous master key, kept by a rekey so gateways
// not yet given the new master key still open the store (rekey.ts).
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS data_keys (id INTEGER PRIMARY KEY, sealed BLOB NOT NULL, created_at TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS data_key_seals (data_key INTEGER NOT NULL REFERENCES data_keys (id), sealed BLOB NOT NULL, created_at TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS secret_versions (
    name TEXT NOT NULL, version INTEGER NOT NULL, data_key INTEGER NOT NULL REFERENCES data_keys (id),
    sealed BLOB NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (name, version)
  );
`

// Made by the first lease taken, under the write lock: a store only read is left as it is.
const LEASE_SCHEMA = 'CREATE TABLE IF NOT EXISTS rotation_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL)'

const dataKeyAad = (id: number) => `bouncer:data-key:${id}`

/** How long a command's write (and an open) waits for another process's write lock, in SQLite's busy handler. */
const LOCK_WAIT_MS = 5_000

/**
 * The data key, opened by the master key it is sealed under now, or else by the previous one a
 * rekey kept (`previous: true`). Throws SecretsError when neither seal opens.
 */
export function openDataKey(db: DatabaseSync, row: { id: number; sealed: Uint8Array }, masterKey: Buffer): { key: Buffer; previous: boolean } {
  try {
    return { key: open(masterKey, Buffer.from(row.sealed), dataKeyAad(row.id), 'the data key'), previous: false }
  } catch (err) {
    const seals = db.prepare('SELECT sealed FROM data_key_seals WHERE data_key = ?').all(row.id) as Array<{ sealed: Uint8Array }>
    for (const seal of seals) {
      try {
        return { key: open(masterKey, Buffer.from(seal.sealed), dataKeyAad(row.id), 'the data key'), previous: true }
      } catch {
        // the next seal
      }
    }
    throw err
  }
}

/** The data key sealed under another master key. */
export function sealDataKey(id: number, dataKey: Buffer, masterKey: Buffer): Buffer {
  return seal(masterKey, dataKey, dataKeyAad(id))
}

/**
 * A failure of the store's file as a SecretsError naming it and the setting: SQLite's own words
 * ("database disk image is malformed", "database is locked") came out as an internal error naming
 * neither. Any other error is answered as it is.
 */
export function storeFileError(path: string, err: unknown): unknown {
  const { code } = err as { code?: string }
  if (code !== 'ERR_SQLITE_ERROR' && !(err as NodeJS.ErrnoException).syscall) return err
  const primary = sqliteCode(err)
  const how = primary === SQLITE.CORRUPT || primary === SQLITE.NOTADB
    ? 'is damaged, or is not a secrets store'
    : primary === SQLITE.BUSY ? 'is locked: another process holds its write lock (try again)' : 'cannot be used'
  return new SecretsError(`the file ${path} (secrets.store.path) ${how}: ${(err as Error).message}`)
}

function fileIdentity(path: string): Pick<Stats, 'dev' | 'ino'> | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

/** `existing`: only a store that is there is opened (a SecretsError otherwise); by default a missing one is made. */
export function openEmbeddedStore(path: string, masterKey: Buffer, options: { existing?: boolean } = {}): SecretStore {
  const fileError = (err: unknown): unknown => storeFileError(path, err)
  if (options.existing && !existsSync(path)) throw new SecretStoreMissing(`there is no secrets store at ${path} (secrets.store.path)`)
  makeDirectories(dirname(path))
  let db: DatabaseSync
  let opened: Stats
  try {
    // Created 0600 before SQLite opens it (it would make it 0644): its -wal and -shm take its mode.
    closeSync(openSync(path, 'a', 0o600))
    db = new DatabaseSync(path)
    opened = statSync(path)
  } catch (err) {
    throw fileError(err)
  }
  let row: { id: number; sealed: Uint8Array } | undefined
  try {
    // Several processes making the store at once (a script's parallel puts, two instances on a new
    // volume) met the change to WAL, and all but one failed at once with "database is locked"
    // (found by the operator probe): it waits its turn.
    db.exec(`PRAGMA busy_timeout = ${LOCK_WAIT_MS}`)
    switchToWal(db)
    db.exec(SCHEMA)
    const newest = db.prepare('SELECT id, sealed FROM data_keys ORDER BY id DESC LIMIT 1')
    row = newest.get() as typeof row
    if (!row) {
      // Looked for again under the write lock: two processes that both found none each made a data
      // key, and the values sealed under the first could no longer be read by anyone.
      row = inTransaction(db, () => {
        const meanwhile = newest.get() as typeof row // made by another process since the look above
        if (meanwhile) return meanwhile
        const id = Number(db.prepare('INSERT INTO data_keys (sealed, created_at) VALUES (?, ?)').run(new Uint8Array(0), new Date().toISOString()).lastInsertRowid)
        db.prepare('UPDATE data_keys SET sealed = ? WHERE id = ?').run(seal(masterKey, randomBytes(32), dataKeyAad(id)), id)
        return newest.get() as { id: number; sealed: Uint8Array }
      })
    }
  } catch (err) {
    db.close() // a file that is not a store (a failed reload must not leak the handle)
    throw fileError(err)
  }
  const dataKeyId = row.id
  let dataKey: Buffer
  try {
    dataKey = openDataKey(db, row, masterKey).key
  } catch (err) {
    db.close()
    throw new SecretsError(`the master key does not open the secrets store at ${path} (wrong key?): ${(err as Error).message}`)
  }
  const aad = (name: string, version: number) => `bouncer:secret:${name}:${version}`

  /**
   * Whether the path still names the file opened. A store deleted (or another moved to its path)
   * under a running gateway was read on from the deleted file: a store `bouncer secrets put` made
   * there never reached the upstream, nothing said why, and the gateway's own rotations went into
   * the deleted file, lost at the next start (found by the operator probe).
   */
  const stillOpened = () => {
    const now = fileIdentity(path)
    return now !== undefined && now.dev === opened.dev && now.ino === opened.ino
  }
  const replaced = () => new SecretsError(`the file ${path} (secrets.store.path) was deleted or replaced since this process opened it: it keeps the values it read, and reads nothing from the file there now until it is restarted`)

  /** A file damaged past the pages the open read fails later, at a query: said as at the open. */
  const querying = <T>(work: () => T): T => {
    try {
      return work()
    } catch (err) {
      throw fileError(err)
    }
  }
  /** A query of the file this process opened, if the path still names it. */
  const reading = <T>(work: () => T): T => {
    if (!stillOpened()) throw replaced()
    return querying(work)
  }
  /** A write refused by the file: said as the store's, and kept apart from a config's faults (SecretStoreWriteFailed). */
  const writing = <T>(work: () => T): T => {
    try {
      return reading(work)
    } catch (err) {
      throw err instanceof SecretsError && !(err instanceof SecretStoreWriteFailed) ? new SecretStoreWriteFailed(err.message, { cause: err.cause ?? err }) : err
    }
  }
  const byAge = db.prepare('SELECT version, data_key, sealed FROM secret_versions WHERE name = ? ORDER BY version DESC LIMIT 1 OFFSET ?')
  const latest = db.prepare('SELECT MAX(version) AS version FROM secret_versions WHERE name = ?')
  const newest = db.prepare('SELECT version, sealed FROM secret_versions WHERE name = ? ORDER BY version DESC LIMIT 1')

  return {
    kind: 'embedded',
    writable: true,
    get(name, which = 'current') {
      const found = reading(() => byAge.get(name, which === 'current' ? 0 : 1)) as { version: number; data_key: number; sealed: Uint8Array } | undefined
      if (!found) return undefined
      if (found.data_key !== dataKeyId) throw new SecretsError(`secret ${name} is sealed under an unknown data key`)
      return open(dataKey, Buffer.from(found.sealed), aad(name, found.version), `secret ${name} (version ${found.version})`).toString('utf8')
    },
    history(name) {
      const rows = reading(() => db.prepare('SELECT version, data_key, sealed FROM secret_versions WHERE name = ? ORDER BY version DESC').all(name)) as Array<{ version: number; data_key: number; sealed: Uint8Array }>
      const values: string[] = []
      for (const row of rows) {
        if (row.data_key !== dataKeyId) continue
        try {
          values.push(open(dataKey, Buffer.from(row.sealed), aad(name, row.version), `secret ${name} (version ${row.version})`).toString('utf8'))
        } catch {
          // a damaged version: the ones that open still count
        }
      }
      return values
    },
    notFound: (name) => `no version of ${name} in ${path}`,
    // The version and its seal's random IV: a secret deleted and stored again starts at version 1
    // once more, and a gateway that held version 1 kept sending the deleted value (found by the
    // operator probe).
    marker(name) {
      // A marker of its own: the refresh then reads the secret, and says once why it cannot.
      if (!stillOpened()) return 'replaced'
      const found = querying(() => newest.get(name)) as { version: number; sealed: Uint8Array } | undefined
      return found === undefined ? undefined : `${found.version}:${Buffer.from(found.sealed.subarray(0, IV_BYTES)).toString('hex')}`
    },
    list() {
      return (reading(() => db.prepare('SELECT DISTINCT name FROM secret_versions ORDER BY name').all()) as Array<{ name: string }>).map((r) => r.name)
    },
    versions(name): SecretVersion[] {
      const rows = reading(() => db.prepare('SELECT version, created_at FROM secret_versions WHERE name = ? ORDER BY version DESC').all(name)) as Array<{ version: number; created_at: string }>
      return rows.map((r, i) => ({ version: r.version, createdAt: r.created_at, label: i === 0 ? 'current' : i === 1 ? 'previous' : null }))
    },
    // Writes fail as reads do (another process's write lock, a full disk): said as the store's.
    put: (name, value) => putVersion(name, value, true) as number,
    tryPut: (name, value) => putVersion(name, value, false),
    delete(name) {
      return writing(() => Number(db.prepare('DELETE FROM secret_versions WHERE name = ?').run(name).changes) > 0)
    },
    tryLease(name, holder, ms) {
      return transaction(false, () => {
        db.exec(LEASE_SCHEMA)
        const at = Date.now()
        const held = db.prepare('SELECT holder, expires_at FROM rotation_leases WHERE name = ?').get(name) as { holder: string; expires_at: number } | undefined
        const free = held === undefined || held.holder === holder || held.expires_at <= at
        if (free) db.prepare('INSERT INTO rotation_leases (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at').run(name, holder, at + ms)
        return free
      })
    },
    releaseLease(name, holder) {
      transaction(false, () => {
        db.exec(LEASE_SCHEMA)
        db.prepare('DELETE FROM rotation_leases WHERE name = ? AND holder = ?').run(name, holder)
      })
    },
    close() {
      db.close()
    },
  }

  /** BEGIN IMMEDIATE without waiting in the busy handler: false at once while another process holds the write lock. */
  function beganUnlessLocked(): boolean {
    db.exec('PRAGMA busy_timeout = 0')
    try {
      db.exec('BEGIN IMMEDIATE')
      return true
    } catch (err) {
      if (isBusy(err)) return false
      throw err
    } finally {
      db.exec(`PRAGMA busy_timeout = ${LOCK_WAIT_MS}`)
    }
  }

  /** `wait`: for another process's write lock, in the busy handler; else undefined at once while it holds it. */
  function putVersion(name: string, value: string, wait: boolean): number | undefined {
    if (!SECRET_NAME.test(name)) throw new SecretsError(invalidSecretName(name))
    return transaction(wait, () => {
      const version = ((latest.get(name) as { version: number | null }).version ?? 0) + 1
      db.prepare('INSERT INTO secret_versions (name, version, data_key, sealed, created_at) VALUES (?, ?, ?, ?, ?)').run(
        name, version, dataKeyId, seal(dataKey, Buffer.from(value, 'utf8'), aad(name, version)), new Date().toISOString(),
      )
      return version
    })
  }

  /**
   * `work` in a write transaction (BEGIN IMMEDIATE), committed, or rolled back when it throws; the
   * store's errors said as writes say them. `wait`: for another process's write lock, in the busy
   * handler; else undefined at once while it holds it.
   */
  function transaction<T>(wait: boolean, work: () => T): T | undefined {
    return writing(() => {
      if (!wait) {
        if (!beganUnlessLocked()) return undefined
      } else {
        db.exec('BEGIN IMMEDIATE')
      }
      try {
        const result = work()
        db.exec('COMMIT')
        return result
      } catch (err) {
        if (db.isTransaction) db.exec('ROLLBACK')
        throw err
      }
    })
  }
}
