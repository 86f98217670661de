// Two openers of a new SQLite audit log at once (a gateway's audit worker and a `bouncer keys`
// command writing its record into the same file): each read the schema's version, then migrated
// in a transaction that took the write lock only at its first statement, so the second found the
// tables made under it — "table audit_chains already exists", "duplicate column name: newest" —
// and the command refused its change (CI, cli-credential-audit); and the switch to WAL answered
// "database is locked" at once, without SQLite's busy handler (CI, this test: round 4 of 12).
// Opened at the same instant from two threads, over and over.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterAll, expect, it } from 'vitest'

const dir = await mkdtemp(join(tmpdir(), 'bouncer-sqlite-race-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

async function openAtOnce(path: string): Promise<Array<string | null>> {
  const barrier = new Int32Array(new SharedArrayBuffer(4))
  const workers = [0, 1].map(() => new Worker(new URL('../../fixtures/open-sqlite-at-once.ts', import.meta.url), { workerData: { path, barrier } }))
  return Promise.all(workers.map(async (worker) => {
    const [outcome] = (await once(worker, 'message')) as [string | null]
    await worker.terminate()
    return outcome
  }))
}

it('a new audit log opened by two writers at once: both open it, its schema made once', async () => {
  for (let round = 0; round < 40; round++) {
    const path = join(dir, `audit-${round}.db`)
    expect(await openAtOnce(path), `round ${round}`).toEqual([null, null])
  }
}, 60_000)
