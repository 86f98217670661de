// A SQLite datasource closed while a query still streams from it (a reload that changes the
// datasource's settings makes a new one and closes the old): the query reads on to its end, and the
// file is closed after it. The file used to be closed at once, and the stream's next page failed.
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, expect, it } from 'vitest'
import { sqliteDatasource } from '../../../src/datasets/sqlite.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

const dir = mkdtempSync(join(tmpdir(), 'bouncer-sqlite-close-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const logger = createLogger({ destination: new Writable({ write: (_chunk, _encoding, done) => done() }) })

it('a query streaming when its datasource is closed reads to its end; the file is closed after it', async () => {
  const path = join(dir, 'orders.db')
  const setup = new DatabaseSync(path)
  setup.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)')
  const insert = setup.prepare('INSERT INTO orders (total) VALUES (?)')
  setup.exec('BEGIN')
  for (let i = 0; i < 1_000; i++) insert.run(i / 4)
  setup.exec('COMMIT')
  setup.close()

  /** This process's descriptors of the datasource's file (others in this shared test process do not count). */
  const openOnIt = () => readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path
    } catch {
      return false // closed between the listing and the read
    }
  }).length
  const source = sqliteDatasource({ name: 'shop', type: 'sqlite', path } as never, logger, { offline: false, key: Buffer.alloc(32) })
  const rows = await source.open({ text: 'SELECT id, total FROM orders ORDER BY id', values: [], timeoutMs: 10_000, requestId: 'r1', traceId: null })
  const first = await rows.read(100)
  expect(first).toHaveLength(100)

  await source.close()
  expect(openOnIt()).toBeGreaterThan(0) // still its reader's
  let read = first.length
  for (;;) {
    const page = await rows.read(100)
    if (page.length === 0) break
    read += page.length
  }
  expect(read).toBe(1_000)
  await rows.close()
  // Closed after its last reader.
  expect(openOnIt()).toBe(0)
})
