// The console's reads of an SQLite audit log run on one worker thread (src/audit/query-thread.ts).
// When that thread fails, the jobs it owed fail with its error and the next job starts a new
// thread. The failed thread's 'exit' comes a turn after its 'error': a job sent to the new thread
// in between must be answered, not failed by the old thread's end.
import { mkdtemp, rm } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readCounts } from '../../src/audit/query-thread.ts'
import { createSqliteSink } from '../../src/audit/sinks/sqlite.ts'
import { evaluateInWorker } from '../helpers/inspector.ts'

let dir: string
let path: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-query-thread-'))
  path = join(dir, 'audit.db')
  const sink = createSqliteSink(path, { durable: false })
  await sink.open() // an empty log, with its schema
  await sink.close()
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('the audit query thread', () => {
  it('a job sent right after the thread failed goes to a new thread and is answered', async () => {
    const source = { type: 'sqlite' as const, path }
    expect(await readCounts(source, 0)).toBeTypeOf('object') // the thread runs

    // From now on the thread throws on its next job, as a bug in a query would (nothing catches it).
    const session = new Session()
    session.connect()
    try {
      await evaluateInWorker(session, '/audit/query-worker', "const port = process.getBuiltinModule('node:worker_threads').parentPort; port.removeAllListeners('message'); port.on('message', () => { throw new Error('a query thread crash, by a test') }); 'armed'")
    } finally {
      session.disconnect()
    }
    const next = await readCounts(source, 0).then(
      () => 'answered by the failing thread',
      (err: Error) => {
        // Rejected from the thread's 'error': its 'exit' is still to come. The next job, sent now:
        return readCounts(source, 0).then((counts) => ({ first: err.message, second: counts }), (again: Error) => ({ first: err.message, second: again.message }))
      },
    )
    expect(next).toMatchObject({ first: 'a query thread crash, by a test' })
    expect(typeof (next as { second: unknown }).second, JSON.stringify(next)).toBe('object')
  })
})
