// inTransaction (collections/sqlite-file.ts), the SQLite stores' write transaction: the error a
// caller is given is the one that happened, also when SQLite has already ended the transaction
// itself (a full disk), and the file is left usable.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { inTransaction, SQLITE, sqliteCode, switchToWal } from '../../../src/collections/index.ts'

let dir: string
let db: DatabaseSync

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bouncer-tx-'))
  db = new DatabaseSync(join(dir, 'store.db'))
  switchToWal(db)
  db.exec('CREATE TABLE t (x BLOB NOT NULL)')
})

afterEach(() => {
  db.close()
  rmSync(dir, { recursive: true, force: true })
})

const rows = () => (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n

describe('inTransaction', () => {
  it('commits what the work wrote and returns its result', () => {
    const result = inTransaction(db, () => {
      db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(10))
      return 'done'
    })
    expect(result).toBe('done')
    expect(db.isTransaction).toBe(false)
    expect(rows()).toBe(1)
  })

  it('rolls back what the work wrote when it throws, and rethrows its error', () => {
    expect(() => inTransaction(db, () => {
      db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(10))
      throw new Error('the work failed')
    })).toThrow('the work failed')
    expect(db.isTransaction).toBe(false)
    expect(rows()).toBe(0)
  })

  it('a full disk is reported as SQLite said it, not as "cannot rollback" (SQLite ended the transaction itself)', () => {
    // max_page_count caps this connection's file: past it SQLite answers SQLITE_FULL, as on a full
    // disk, and rolls the whole transaction back before the work's error reaches the catch.
    db.exec('PRAGMA max_page_count = 20')
    let caught: unknown
    try {
      inTransaction(db, () => {
        db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(1000))
        for (let i = 0; i < 200; i++) db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(4000))
      })
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(Error)
    expect((caught as Error).message).toBe('database or disk is full')
    expect(sqliteCode(caught)).toBe(SQLITE.FULL)
    // Nothing of it kept, and the connection takes the next transaction once there is room.
    expect(db.isTransaction).toBe(false)
    expect(rows()).toBe(0)
    db.exec('PRAGMA max_page_count = 100000')
    inTransaction(db, () => void db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(10)))
    expect(rows()).toBe(1)
  })

  it('holds the write lock from the start by default; a plain BEGIN takes it at the first write', () => {
    const other = new DatabaseSync(join(dir, 'store.db'), { timeout: 0 })
    const otherCanWrite = () => {
      try {
        other.exec('BEGIN IMMEDIATE')
        other.exec('ROLLBACK')
        return true
      } catch {
        return false // SQLITE_BUSY: this connection holds the write lock
      }
    }
    try {
      inTransaction(db, () => expect(otherCanWrite()).toBe(false))
      inTransaction(db, () => {
        expect(otherCanWrite()).toBe(true)
        db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(10))
        expect(otherCanWrite()).toBe(false)
      }, 'BEGIN')
      expect(rows()).toBe(1)
    } finally {
      other.close()
    }
  })
})
