// Exact bucket and quota arithmetic with a clock the test controls.
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { takeRate } from '../../../src/limits/bucket.ts'
import { policyItem, stateHeader } from '../../../src/limits/headers.ts'
import { takeQuota } from '../../../src/limits/quota.ts'
import { createMemoryStore } from '../../../src/limits/stores/memory.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'

describe('rate (GCRA): 10/s with a burst of 3', () => {
  const spec = { intervalMs: 100, burst: 3 }

  it('a fresh key takes its burst at once, then one per interval', () => {
    let tat: number | undefined
    const at = 1_000_000
    const outcomes = []
    for (let i = 0; i < 4; i++) {
      const outcome = takeRate(spec, tat, at)
      if (outcome.allowed) tat = outcome.tat
      outcomes.push(outcome)
    }
    expect(outcomes.map((o) => [o.allowed, o.remaining])).toEqual([[true, 2], [true, 1], [true, 0], [false, 0]])
    expect(outcomes[3]?.retryAfterMs).toBe(100)
    expect(outcomes[2]?.resetMs).toBe(300) // full again after 3 intervals
    expect(takeRate(spec, tat, at + 99).allowed).toBe(false)
    expect(takeRate(spec, tat, at + 100)).toMatchObject({ allowed: true, remaining: 0 })
  })

  it('refills at the sustained rate and never above the burst', () => {
    const at = 5_000_000
    const first = takeRate(spec, undefined, at)
    expect(takeRate(spec, first.tat, at + 10_000)).toMatchObject({ allowed: true, remaining: 2 })
  })

  it('admits burst + elapsed / interval over a long run', () => {
    let tat: number | undefined
    let admitted = 0
    let last = 0
    for (let t = 0; t < 10_000; t += 7) {
      last = t
      const outcome = takeRate(spec, tat, 10_000_000 + t)
      if (outcome.allowed) {
        admitted++
        tat = outcome.tat
      }
    }
    expect(admitted).toBe(3 + Math.floor(last / 100)) // 3 + 99 by t = 9996 ms
  })
})

describe('quota: calendar windows in UTC', () => {
  const day = { count: 2, periodMs: 86_400_000 }
  const noonUtc = Date.UTC(2026, 10, 26, 12, 0, 0)

  it('counts within the UTC day and says when it resets', () => {
    const a = takeQuota(day, undefined, noonUtc)
    const b = takeQuota(day, a.used, noonUtc + 1)
    const c = takeQuota(day, b.used, noonUtc + 2)
    expect([a.allowed, b.allowed, c.allowed]).toEqual([true, true, false])
    expect([a.remaining, b.remaining]).toEqual([1, 0])
    expect(c.retryAfterMs).toBe(12 * 3_600_000 - 2)
    expect(new Date(c.windowStart).toISOString()).toBe('2026-11-26T00:00:00.000Z')
  })

  it('rolls over at midnight UTC', () => {
    const beforeMidnight = Date.UTC(2026, 10, 26, 23, 59, 59, 999)
    const used = takeQuota(day, 2, beforeMidnight)
    expect(used.allowed).toBe(false)
    expect(used.retryAfterMs).toBe(1)
    const next = takeQuota(day, undefined, beforeMidnight + 1)
    expect(next).toMatchObject({ allowed: true, remaining: 1, windowStart: Date.UTC(2026, 10, 27) })
  })

  it('rolls over hourly and per minute too', () => {
    const hour = { count: 1, periodMs: 3_600_000 }
    expect(takeQuota(hour, undefined, Date.UTC(2026, 0, 1, 10, 59, 30)).resetMs).toBe(30_000)
    const minute = { count: 1, periodMs: 60_000 }
    expect(takeQuota(minute, undefined, Date.UTC(2026, 0, 1, 10, 0, 45)).resetMs).toBe(15_000)
  })
})

describe('the memory store', () => {
  it('takes several limits all or nothing, naming the first that refuses', () => {
    let clock = 1_000_000
    const store = createMemoryStore({ maxKeys: 100, now: () => clock })
    const tight = { key: 'tight|k', rate: { intervalMs: 1000, burst: 1 }, quota: null }
    const loose = { key: 'loose|k', rate: { intervalMs: 1000, burst: 5 }, quota: null }
    expect(store.take([loose, tight]).refused).toBe(-1)
    const refused = store.take([loose, tight])
    expect(refused.refused).toBe(1)
    // The loose limit was not charged by the refused request: 4 of 5 are left, not 3.
    clock += 1
    expect(store.take([loose]).states[0]?.remaining).toBe(3)
  })

  it('stays within max_keys however many keys arrive', () => {
    const store = createMemoryStore({ maxKeys: 100, now: () => 1_000_000 })
    let refused = 0
    for (let i = 0; i < 5_000; i++) if (store.take([{ key: `k${i}`, rate: { intervalMs: 1000, burst: 1 }, quota: null }]).reason === 'full') refused++
    expect(store.size).toBe(100)
    expect(refused).toBe(4_900)
  })

  it('sweeps idle keys once their state has decayed', () => {
    let clock = 1_000_000
    const store = createMemoryStore({ maxKeys: 10_000, now: () => clock })
    for (let i = 0; i < 500; i++) store.take([{ key: `k${i}`, rate: { intervalMs: 100, burst: 1 }, quota: null }])
    expect(store.size).toBe(500)
    clock += 11_000
    store.take([{ key: 'fresh', rate: { intervalMs: 100, burst: 1 }, quota: null }])
    expect(store.size).toBe(1)
  })
})

describe('the memory store when full (issue 22: a flood of new keys reset live quotas)', () => {
  const daily = { count: 3, periodMs: 86_400_000 }
  const slow = { intervalMs: 60_000, burst: 5 }

  function logsTo(lines: string[]) {
    return createLogger({ level: 'warn', destination: new Writable({ write(chunk: Buffer, _e, done) { lines.push(chunk.toString()); done() } }) })
  }

  it('a spent daily quota stays spent however many new keys arrive; the new keys are refused', () => {
    let clock = Date.UTC(2026, 0, 1, 12)
    const store = createMemoryStore({ maxKeys: 100, now: () => clock })
    const quota = { key: 'daily#q|p:4:corp:s:svc', rate: null, quota: daily }
    for (let i = 0; i < 3; i++) expect(store.take([quota]).refused).toBe(-1)
    expect(store.take([quota]).reason).toBe('limit')
    const flood = []
    for (let i = 0; i < 500; i++) {
      clock += 1
      flood.push(store.take([{ key: `per-client|h:s:${i}`, rate: slow, quota: null }]))
    }
    expect(flood.filter((r) => r.refused === -1)).toHaveLength(99)
    expect(flood.filter((r) => r.reason === 'full')).toHaveLength(401)
    expect(flood.at(-1)).toMatchObject({ refused: 0, reason: 'full', retryAfterMs: 1000, states: [] })
    expect(store.take([quota])).toMatchObject({ refused: 0, reason: 'limit' })
    expect(store.size).toBe(100)
  })

  it('a bucket below its burst is kept too, and keys already held keep working', () => {
    let clock = 5_000_000
    const store = createMemoryStore({ maxKeys: 100, now: () => clock })
    const spent = { key: 'per-principal|p:4:corp:s:svc', rate: { intervalMs: 60_000, burst: 1 }, quota: null }
    expect(store.take([spent]).refused).toBe(-1)
    for (let i = 0; i < 300; i++) store.take([{ key: `per-client|h:s:${i}`, rate: slow, quota: null }])
    clock += 2_000
    expect(store.take([spent]).reason).toBe('limit')
    expect(store.take([{ key: 'per-client|h:s:7', rate: slow, quota: null }]).refused).toBe(-1)
    expect(store.take([{ key: 'per-client|h:s:new', rate: slow, quota: null }]).reason).toBe('full')
  })

  it('drops decayed state first: refilled buckets and past quota windows make room for new keys', () => {
    let clock = Date.UTC(2026, 0, 1, 23, 59, 59)
    const store = createMemoryStore({ maxKeys: 100, now: () => clock })
    const spent = { key: 'daily#q|p:4:corp:s:svc', rate: null, quota: daily }
    for (let i = 0; i < 4; i++) store.take([spent])
    for (let i = 0; i < 49; i++) store.take([{ key: `fast|${i}`, rate: { intervalMs: 10, burst: 1 }, quota: null }])
    for (let i = 0; i < 50; i++) store.take([{ key: `minute#q|${i}`, rate: null, quota: { count: 5, periodMs: 60_000 } }])
    expect(store.size).toBe(100)
    clock += 100 // the fast buckets have refilled; the day and the minute are still running
    expect(store.take([{ key: 'new|1', rate: slow, quota: null }]).refused).toBe(-1)
    expect(store.size).toBe(52)
    expect(store.take([spent]).reason).toBe('limit') // the spent quota was not among them
    clock += 1_000 // past midnight UTC: yesterday's quotas carry nothing any more
    for (let i = 0; i < 48; i++) store.take([{ key: `more|${i}`, rate: slow, quota: null }])
    expect(store.take([{ key: 'new|2', rate: slow, quota: null }]).refused).toBe(-1)
    expect(store.size).toBe(50)
  })

  it('looks for decayed state at most once a second while full, so a flood cannot make every request sweep', () => {
    let clock = 9_000_000
    const store = createMemoryStore({ maxKeys: 100, now: () => clock })
    for (let i = 0; i < 100; i++) store.take([{ key: `k${i}`, rate: { intervalMs: 500, burst: 1 }, quota: null }])
    expect(store.take([{ key: 'a', rate: slow, quota: null }]).reason).toBe('full') // swept: nothing had decayed
    clock += 600 // every k* has refilled, but the last sweep was 600 ms ago
    expect(store.take([{ key: 'b', rate: slow, quota: null }]).reason).toBe('full')
    clock += 400
    expect(store.take([{ key: 'c', rate: slow, quota: null }]).refused).toBe(-1)
  })

  it('needs room for all of a request\'s new keys, and charges nothing when there is none', () => {
    const store = createMemoryStore({ maxKeys: 100, now: () => 1_000_000 })
    const held = { key: 'held', rate: { intervalMs: 1000, burst: 5 }, quota: null }
    store.take([held])
    for (let i = 0; i < 98; i++) store.take([{ key: `k${i}`, rate: slow, quota: null }])
    const result = store.take([held, { key: 'new-a', rate: slow, quota: null }, { key: 'new-b', rate: slow, quota: null }])
    expect(result).toMatchObject({ refused: 1, reason: 'full' })
    expect(store.take([held]).states[0]?.remaining).toBe(3) // 5 - 1 - this one: the refused request took nothing
  })

  it('logs "full" at most every 10 s with the count refused since, and says so in its status', () => {
    const lines: string[] = []
    let clock = 1_000_000
    const store = createMemoryStore({ maxKeys: 100, now: () => clock, logger: logsTo(lines) })
    for (let i = 0; i < 150; i++) store.take([{ key: `k${i}`, rate: slow, quota: null }])
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0] as string)).toMatchObject({ level: 'warn', store: 'memory', max_keys: 100, refused: 1 })
    clock += 10_000
    store.take([{ key: 'late', rate: slow, quota: null }])
    expect(lines).toHaveLength(2)
    expect(JSON.parse(lines[1] as string)).toMatchObject({ refused: 50 })
    expect(store.refusedFull).toBe(51)
    expect(store.status()).toBe('memory: 100 keys (max_keys reached: 51 requests refused for a new key)')
  })
})

describe('RateLimit headers', () => {
  it('formats the policy and the state as structured-field lists', () => {
    const policy = [policyItem('per-principal', 20, 2_000), policyItem('daily', 10_000, 86_400_000)].join(', ')
    expect(policy).toBe('"per-principal";q=20;w=2, "daily";q=10000;w=86400')
    expect(stateHeader({ labels: ['per-principal', 'daily'], resetScales: [1, 1] }, [{ remaining: 19, resetMs: 100 }, { remaining: 9941, resetMs: 43_199_500 }])).toBe('"per-principal";r=19;t=1, "daily";r=9941;t=43200')
  })
})
