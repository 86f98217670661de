// A function that throws, loops or eats memory costs its own request and its own worker, nothing
// else: 502 function_error with the request id (the stack in the log only), 504 function_timeout
// with the worker terminated and replaced, other routes answering all the while, and the next call
// served by a fresh worker.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { metricValue, waitForMetric, waitForText } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))

let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  gw = await startTestGateway({
    upstreams: [{ name: 'api', url: upstream.url }],
    functions: [
      { name: 'thrower', module: join(FIXTURES, 'throw.ts'), concurrency: 1 },
      { name: 'looper', module: join(FIXTURES, 'misbehave.js'), timeout: '1s', concurrency: 1 },
      // A long timeout: the memory limit, not the clock, must stop it, however slow the machine.
      { name: 'hog', module: join(FIXTURES, 'misbehave.js'), timeout: '60s', memory: '64MB', concurrency: 1 },
      { name: 'echo', module: join(FIXTURES, 'echo.ts'), concurrency: 1 },
      { name: 'late', module: join(FIXTURES, 'late-throw.js'), concurrency: 1 },
      { name: 'broken', module: join(FIXTURES, 'broken.ts'), concurrency: 2 },
      { name: 'oddly', module: join(FIXTURES, 'throws-oddly.mjs'), concurrency: 1 },
      { name: 'slow', module: join(FIXTURES, 'slow-load.mjs'), timeout: '1s', concurrency: 1 },
      { name: 'stuck', module: join(FIXTURES, 'never-loads.mjs'), timeout: '1s', concurrency: 1 },
    ],
    routes: [
      { id: 'throw', path: '/throw', function: 'thrower', public: true },
      { id: 'looper', path: '/looper', function: 'looper', public: true },
      { id: 'hog', path: '/hog', function: 'hog', public: true },
      { id: 'echo', path: '/echo', function: 'echo', public: true },
      { id: 'late', path: '/late', function: 'late', public: true },
      { id: 'broken', path: '/broken', function: 'broken', public: true },
      { id: 'oddly', path: '/oddly', function: 'oddly', public: true },
      { id: 'slow', path: '/slow', function: 'slow', public: true },
      { id: 'stuck', path: '/stuck', function: 'stuck', public: true },
      { id: 'api', path: '/api/*', upstream: 'api', public: true },
    ],
  })
})

afterAll(async () => {
  await gw?.close()
  await upstream?.close()
})

const logs = () => gw.logs.join('')
const logLines = () => gw.logs.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)

async function call(path: string, requestId: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${gw.url}${path}`, { headers: { 'x-request-id': requestId } })
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
}

/** Other routes — an upstream and another function — answer while `busy` is stuck. */
async function othersAnswer(tag: string): Promise<void> {
  expect((await call('/api/ping', `${tag}-api`)).status).toBe(200)
  expect((await call('/echo', `${tag}-echo`)).status).toBe(200)
}

describe('a function that fails', () => {
  it('a throw is 502 function_error with the request id; the message and stack are in the log only', async () => {
    const { status, body } = await call('/throw', 'fn-throw-1')
    expect(status).toBe(502)
    expect(body).toMatchObject({ code: 'function_error', request_id: 'fn-throw-1' })
    expect(JSON.stringify(body)).not.toMatch(/ledger|7f3a|throw\.ts/)
    await waitForText(logs, 'function thrower threw')
    const line = logLines().find((l) => l.request_id === 'fn-throw-1' && l.msg === 'function thrower threw') as { err: { message: string; stack: string } }
    expect(line.err.message).toContain('the ledger is out of balance')
    expect(line.err.stack).toContain('throw.ts')
    // The worker survives a throw, as a Lambda environment does: the next call is answered by it.
    expect((await call('/throw', 'fn-throw-2')).status).toBe(502)
  })

  it('a thrown value that cannot be read as an error (no prototype, a name getter that throws) is a throw like any other: the worker carries on', async () => {
    // Before: reading it threw in the worker, which died: "its worker stopped", and a cold start.
    for (const [i, mode] of ['null-proto', 'getter'].entries()) {
      const { status, body } = await call(`/oddly?mode=${mode}`, `fn-odd-${mode}`)
      expect({ status, body }).toMatchObject({ status: 502, body: { code: 'function_error', detail: 'Function "oddly" failed. The gateway\'s log has the error under this request id.' } })
      expect((await call('/oddly', `fn-odd-after-${mode}`)).body).toEqual({ invocations: 2 * (i + 1) })
    }
  })

  it('an infinite loop is 504 function_timeout after the timeout; other routes answer meanwhile; the next call works', async () => {
    const looping = call('/looper?mode=loop', 'fn-loop-1')
    await waitForText(logs, /"request_id":"fn-loop-1"[^\n]*"msg":"looping now"/)
    await othersAnswer('during-loop')
    const { status, body } = await looping
    expect(status).toBe(504)
    expect(body).toMatchObject({ code: 'function_timeout', request_id: 'fn-loop-1' })
    expect(logs()).toContain('function looper timed out: its worker was terminated and replaced')
    const next = await call('/looper', 'fn-loop-2')
    expect(next).toEqual({ status: 200, body: { ok: true, mode: 'none' } })
  })

  it('a cold start does not count against the timeout: a module that loads in 1.5 s answers its 1 s function after its worker is replaced', async () => {
    const first = await call('/slow', 'fn-slow-1')
    expect(first).toMatchObject({ status: 200, body: { ok: true } })
    // The handler's clock starts at the call too: near the whole second left, not what the load left.
    expect(first.body.remainingMs).toBeGreaterThan(500)
    const looping = call('/slow?mode=loop', 'fn-slow-loop')
    await waitForText(logs, /"request_id":"fn-slow-loop"[^\n]*"msg":"slow-load: looping now"/)
    expect((await looping).status).toBe(504) // the handler's own time is bounded as before
    // Its replacement loads for 1.5 s: this call waits for it, then has its second.
    expect(await call('/slow', 'fn-slow-2')).toMatchObject({ status: 200, body: { ok: true } })
  })

  it('a module that never finishes loading answers 504 after the load\'s 10 s, saying so, and its worker is replaced', { timeout: 30_000 }, async () => {
    const started = performance.now()
    const { status, body } = await call('/stuck', 'fn-stuck-1')
    expect({ status, body }).toMatchObject({ status: 504, body: { code: 'function_timeout', detail: 'Function "stuck" did not load within 11000ms: its module\'s top level did not finish.' } })
    expect(performance.now() - started).toBeGreaterThan(9_000) // not the function's 1 s timeout
    expect(logs()).toContain('function stuck did not load its module in time: its worker was terminated and replaced')
    await othersAnswer('after-stuck')
  })

  it('a handler over its memory is 502 function_error; the gateway and the function live on', async () => {
    const hogging = call('/hog?mode=hog', 'fn-hog-1')
    await waitForText(logs, /"request_id":"fn-hog-1"[^\n]*"msg":"hogging now"/)
    const { status, body } = await hogging
    expect(status).toBe(502)
    expect(body).toMatchObject({ code: 'function_error', request_id: 'fn-hog-1' })
    expect(body.detail).toContain('ran out of memory (64MB)')
    expect(logLines().some((l) => l.request_id === 'fn-hog-1' && String(l.msg).includes('ran out of memory'))).toBe(true)
    await othersAnswer('after-hog')
    expect(await call('/hog', 'fn-hog-2')).toEqual({ status: 200, body: { ok: true, mode: 'none' } })
  })

  it('a worker that dies between invocations is a background failure; the next call starts a new one', async () => {
    expect(await call('/late?late=throw', 'fn-late-1')).toEqual({ status: 200, body: { answered: true } })
    await waitForText(logs, 'function late: a worker stopped between invocations')
    expect(logLines().some((l) => l.task === 'function_worker' && l.function === 'late' && String((l.err as { message?: string })?.message).includes('a timer failed after the answer'))).toBe(true)
    expect(await metricValue(gw.adminUrl, 'bouncer_background_failures_total{task="function_worker"}')).toBeGreaterThanOrEqual(1)
    expect(await call('/late', 'fn-late-2')).toEqual({ status: 200, body: { answered: true } })
  })

  it('a module that cannot load is reported once, before any request; each invocation is 502 with the reason in the log', async () => {
    await waitForText(logs, 'function broken: its module could not be loaded')
    const reports = logLines().filter((l) => l.task === 'function_worker' && l.function === 'broken')
    expect(reports).toHaveLength(1) // two workers, one report
    expect((reports[0]?.err as { message: string }).message).toBe('REPORTS_TABLE is not set')
    await waitForMetric(gw.adminUrl, 'bouncer_background_failures_total{task="function_worker"}', 1)
    const { status, body } = await call('/broken', 'fn-broken-1')
    expect(status).toBe(502)
    expect(body).toMatchObject({ code: 'function_error', request_id: 'fn-broken-1' })
    await waitForText(logs, /"request_id":"fn-broken-1"[^\n]*"msg":"function broken could not be loaded"/)
  })
})
