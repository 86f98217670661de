// Master key rotation of the embedded store (`bouncer secrets rekey`). Values are sealed under a
// data key and only the data key under the master key, so a rekey seals the data key under the new
// master key, in one transaction, and no value is rewritten. The seal under the old key is kept, so
// a gateway still given the old key (a worker replaced before the restart, an instance not yet
// rolled) opens the store, until `--drop-previous`. Running gateways hold the data key and never
// read its seal again: a rekey needs no restart until the old key is dropped.
import { existsSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'
import { SecretsError } from './crypto.ts'
import { openDataKey, openEmbeddedStore, sealDataKey, storeFileError } from './embedded.ts'

/** Opens the store with the current key (checking file, schema and key as serve does), then works on its database in one transaction. */
function inTransaction<T>(path: string, currentKey: Buffer, work: (db: DatabaseSync, dataKeys: Array<{ id: number; sealed: Uint8Array; key: Buffer; previous: boolean }>) => T): T {
  if (!existsSync(path)) throw new SecretsError(`there is no secrets store at ${path} (secrets.store.path)`)
  openEmbeddedStore(path, currentKey).close()
  const db = new DatabaseSync(path)
  try {
    // A seal removed is overwritten on its page, and the WAL is emptied after: not left in free
    // pages for a copy of the file to give back (found by review).
    db.exec('PRAGMA busy_timeout = 5000; PRAGMA secure_delete = ON; BEGIN IMMEDIATE')
    let result: T
    try {
      const rows = db.prepare('SELECT id, sealed FROM data_keys ORDER BY id').all() as Array<{ id: number; sealed: Uint8Array }>
      const dataKeys = rows.map((row) => ({ ...row, ...openDataKey(db, row, currentKey) }))
      result = work(db, dataKeys)
      db.exec('COMMIT')
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK')
      throw err
    }
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
    return result
  } catch (err) {
    // Another process's write lock, a full disk: the store's file named, not an internal error.
    throw storeFileError(path, err)
  } finally {
    db.close()
  }
}

/** Seals the store's data key under `newKey`; the seal under `currentKey` stays as the previous one (any older is forgotten). */
export function rekeyEmbeddedStore(path: string, currentKey: Buffer, newKey: Buffer): void {
  if (currentKey.equals(newKey)) throw new SecretsError('the new master key is the one the store is sealed under now')
  inTransaction(path, currentKey, (db, dataKeys) => {
    const now = new Date().toISOString()
    for (const dataKey of dataKeys) {
      if (dataKey.previous) throw new SecretsError(`the master key given opens the store only as its previous key: the store was rekeyed since; give its current key`)
      db.prepare('DELETE FROM data_key_seals WHERE data_key = ?').run(dataKey.id)
      db.prepare('INSERT INTO data_key_seals (data_key, sealed, created_at) VALUES (?, ?, ?)').run(dataKey.id, dataKey.sealed, now)
      db.prepare('UPDATE data_keys SET sealed = ? WHERE id = ?').run(sealDataKey(dataKey.id, dataKey.key, newKey), dataKey.id)
    }
  })
}

/** Forgets the previous master key's seals: only `currentKey` opens the store after. Answers how many were forgotten. */
export function dropPreviousMasterKey(path: string, currentKey: Buffer): number {
  return inTransaction(path, currentKey, (db, dataKeys) => {
    if (dataKeys.some((dataKey) => dataKey.previous)) throw new SecretsError('the master key given is the previous one: give the gateway the new master key (secrets.store.master_key) before dropping the previous')
    return Number(db.prepare('DELETE FROM data_key_seals').run().changes)
  })
}
