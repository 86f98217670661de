// Found by an adversarial probe (helper): with `server.workers: 2`, a reload that changed api_keys
// opened a directory in both workers in the same millisecond, their 5 s flush timers lined up, and
// the second writer of the shared SQLite file found it locked (the write does not wait: SQLite
// waits on the event loop) on every flush: an error logged, bouncer_background_failures_total
// {task="api_key_usage"} counted, last-used times late. A lock held for a moment by another writer
// is now tried again shortly, off the event loop; one held longer is still one failure, kept.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createApiKeyDirectory } from '../../../src/identity/api-keys/directory.ts'
import { openSqliteKeyStore } from '../../../src/identity/api-keys/sqlite-store.ts'
import type { ApiKeyStore } from '../../../src/identity/api-keys/store.ts'
import { createBackgroundTasks } from '../../../src/telemetry/background.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import { createMetrics, type AuditGauges } from '../../../src/telemetry/metrics.ts'

const noAudit: AuditGauges = { queueDepth: 0, written: 0, spilled: 0, replayed: 0, dropped: 0, quarantined: 0, spillBytes: 0, sinks: {} }
/** Longer than any wait before a flush (at most 125% of 5 s) and its retries. */
const FLUSH_DUE_MS = 7_000
const ID = 'a'.repeat(16)
const USED_AT = 1_750_000_000_000

const cleanup: Array<() => unknown> = []

afterEach(async () => {
  vi.useRealTimers()
  for (const step of cleanup.splice(0).reverse()) await step()
})

async function setup(onRecordUse: (call: number) => void = () => {}) {
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-key-usage-'))
  cleanup.push(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'keys.db')
  const real = openSqliteKeyStore(path)
  cleanup.push(() => real.close())
  await real.insert({ id: ID, principal: 'bot-a', description: null, hash: 'ab'.repeat(32), createdAt: 1, expiresAt: null, revokedAt: null, lastUsedAt: null })

  // Another writer of the same file: another worker, another instance, `bouncer keys`.
  const other = new DatabaseSync(path)
  other.exec('PRAGMA busy_timeout = 0')
  cleanup.push(() => {
    if (other.isTransaction) other.exec('ROLLBACK')
    other.close()
  })

  let calls = 0
  const store: ApiKeyStore = {
    ...real,
    recordUse(uses) {
      onRecordUse(++calls)
      return real.recordUse(uses)
    },
  }
  const lines: Array<Record<string, unknown>> = []
  const logger = createLogger({ level: 'debug', destination: new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }) })
  const metrics = createMetrics({ audit: () => noAudit, inFlight: () => 0 })
  vi.useFakeTimers()
  const directory = createApiKeyDirectory(store, { cacheMs: 0, background: createBackgroundTasks(logger, metrics) })

  return {
    other,
    directory,
    calls: () => calls,
    errors: () => lines.filter((line) => line.level === 50 || line.level === 'error'),
    failures: async () => {
      const line = (await metrics.render()).body.split('\n').find((l) => l.startsWith('bouncer_background_failures_total{task="api_key_usage"} '))
      return Number(line?.split(' ')[1])
    },
    // As `bouncer keys list` sees it: another connection to the file.
    lastUsed: () => {
      const reader = new DatabaseSync(path)
      try {
        return (reader.prepare('SELECT last_used_at FROM api_keys WHERE id = ?').get(ID) as { last_used_at: number | null }).last_used_at
      } finally {
        reader.close()
      }
    },
  }
}

describe('last-used times while another writer holds the SQLite lock', () => {
  it('a lock released shortly: written, no failure counted, nothing logged as an error', async () => {
    const t = await setup((call) => {
      if (call === 2) t.other.exec('COMMIT') // the other writer is done by the first retry
    })
    t.directory.used(ID, USED_AT)
    t.other.exec('BEGIN IMMEDIATE')

    await vi.advanceTimersByTimeAsync(FLUSH_DUE_MS)

    expect(t.calls()).toBe(2)
    expect(t.lastUsed()).toBe(USED_AT)
    expect(await t.failures()).toBe(0)
    expect(t.errors()).toEqual([])
    await t.directory.close()
  })

  it('a lock held past every retry: one failure, the batch kept and written by the next flush', async () => {
    const t = await setup()
    t.directory.used(ID, USED_AT)
    t.other.exec('BEGIN IMMEDIATE')

    // Up to the first flush's failure, not past it: advanced a whole FLUSH_DUE_MS, a first flush
    // drawn early (3.75 s) and its retries left the next one (3.75 s on) inside the second below (CI).
    for (let waited = 0; (await t.failures()) === 0 && waited < FLUSH_DUE_MS; waited += 50) await vi.advanceTimersByTimeAsync(50)
    const tries = t.calls()
    expect(tries).toBeGreaterThan(1)
    expect(await t.failures()).toBe(1)
    expect(t.errors()).toHaveLength(1)
    expect(JSON.stringify(t.errors()[0])).toContain('database is locked')
    expect(t.lastUsed()).toBeNull()
    // Bounded: no more tries until the next flush (at least 3.75 s later).
    await vi.advanceTimersByTimeAsync(1_000)
    expect(t.calls()).toBe(tries)

    t.other.exec('COMMIT')
    await vi.advanceTimersByTimeAsync(FLUSH_DUE_MS)
    expect(t.lastUsed()).toBe(USED_AT)
    expect(t.calls()).toBe(tries + 1)
    expect(await t.failures()).toBe(1)
    await t.directory.close()
  })

  it('close() during a retry: waits for it, the time is written, the store closed after', async () => {
    let closing: Promise<void> | undefined
    const t = await setup((call) => {
      if (call === 1) void Promise.resolve().then(() => (closing = t.directory.close())) // shutdown while the lock is held
      if (call === 2) t.other.exec('COMMIT')
    })
    t.directory.used(ID, USED_AT)
    t.other.exec('BEGIN IMMEDIATE')

    await vi.advanceTimersByTimeAsync(FLUSH_DUE_MS)
    expect(closing).toBeDefined()
    await closing

    expect(t.lastUsed()).toBe(USED_AT)
    expect(await t.failures()).toBe(0)
    expect(t.errors()).toEqual([])
  })
})
