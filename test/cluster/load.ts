// A bounded load generator: a fixed request rate for a fixed time through one undici pool, then it
// stops by itself. Every request has its own X-Request-Id, so the suite can look each answered one
// up in the audit log; every answer is counted by status and error code.
import { Pool } from 'undici'

export interface LoadOptions {
  url: string
  path: string | ((n: number) => string)
  headers?: Record<string, string>
  /** Requests per second, spread evenly (default 150). */
  rate?: number
  durationMs: number
  /** Requests in flight at most (default 16). */
  concurrency?: number
  /** Prefix of the request ids. */
  tag: string
}

export interface LoadResult {
  requests: number
  /** 2xx answers. */
  answered: number
  /** Anything else: a status >= 400, or no answer at all (`network`). */
  errors: number
  byStatus: Record<string, number>
  byCode: Record<string, number>
  /** Request ids of the 2xx answers. */
  answeredIds: string[]
  /** When each request was decided, roughly: the midpoint of sending it and its answer (ms since the start). */
  decidedAt: number[]
  elapsedMs: number
}

export function runLoad(options: LoadOptions): { done: Promise<LoadResult>; result: LoadResult } {
  const rate = options.rate ?? 150
  const concurrency = options.concurrency ?? 16
  const pool = new Pool(options.url, { connections: concurrency, pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 })
  const result: LoadResult = { requests: 0, answered: 0, errors: 0, byStatus: {}, byCode: {}, answeredIds: [], decidedAt: [], elapsedMs: 0 }
  const started = performance.now()
  const deadline = started + options.durationMs
  const interval = 1000 / rate
  let next = 0
  let inFlight = 0

  async function one(n: number): Promise<void> {
    const id = `${options.tag}-${n}`
    const path = typeof options.path === 'function' ? options.path(n) : options.path
    result.requests++
    inFlight++
    const sent = performance.now()
    try {
      const res = await pool.request({ path, method: 'GET', headers: { ...options.headers, 'x-request-id': id } })
      result.decidedAt.push((sent + performance.now()) / 2 - started)
      const body = await res.body.text()
      result.byStatus[res.statusCode] = (result.byStatus[res.statusCode] ?? 0) + 1
      if (res.statusCode < 300) {
        result.answered++
        result.answeredIds.push(id)
      } else {
        result.errors++
        let code = String(res.statusCode)
        try {
          code = (JSON.parse(body) as { code?: string }).code ?? code
        } catch {
          // not a problem document (HAProxy's own 503 page)
        }
        result.byCode[code] = (result.byCode[code] ?? 0) + 1
      }
    } catch (err) {
      result.errors++
      result.byStatus.network = (result.byStatus.network ?? 0) + 1
      const code = `network:${(err as { code?: string }).code ?? 'error'}`
      result.byCode[code] = (result.byCode[code] ?? 0) + 1
    } finally {
      inFlight--
    }
  }

  const done = (async () => {
    const running = new Set<Promise<void>>()
    for (;;) {
      const at = started + next * interval
      if (at >= deadline) break
      const wait = at - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      if (inFlight >= concurrency) {
        await Promise.race(running) // saturated: the rate drops instead of the queue growing
        continue
      }
      const p = one(next++).finally(() => running.delete(p))
      running.add(p)
    }
    await Promise.all(running)
    result.elapsedMs = performance.now() - started
    await pool.close()
    return result
  })()
  return { done, result }
}

/** One line for the test output and the README: requests, errors and what they were. */
export function figure(name: string, r: LoadResult, extra: Record<string, string | number> = {}): string {
  const codes = Object.entries(r.byCode).map(([code, n]) => `${code}=${n}`).join(' ')
  const more = Object.entries(extra).map(([k, v]) => `${k}=${v}`).join(' ')
  return `[cluster] ${name}: requests=${r.requests} answered=${r.answered} errors=${r.errors} (${(100 * r.errors / Math.max(1, r.requests)).toFixed(2)}%)${codes ? ` [${codes}]` : ''} over ${(r.elapsedMs / 1000).toFixed(1)}s${more ? ` ${more}` : ''}`
}

/**
 * How many of these requests one exact token bucket (`rate` a second, `burst` deep) would have let
 * through: what a fleet that shares its buckets perfectly allows for the same arrivals, whatever
 * rate the loaded machine actually managed to offer.
 */
export function idealBucketAllows(decidedAt: readonly number[], rate: number, burst: number): number {
  let tokens = burst
  let last = 0
  let allowed = 0
  for (const at of [...decidedAt].sort((a, b) => a - b)) {
    tokens = Math.min(burst, tokens + ((at - last) * rate) / 1000)
    last = at
    if (tokens >= 1) {
      tokens -= 1
      allowed++
    }
  }
  return allowed
}
