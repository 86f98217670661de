// A function runs at most `concurrency` invocations at once: one more is refused at once with 503
// upstream_saturated and Retry-After (as Lambda throttles at its reserved concurrency), and the pool
// takes requests again as soon as a worker is free. The held invocations are released by the test,
// through a server the handler calls: nothing here waits on a clock.
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { NoAuditLog } from '../../src/audit/sinks/sqlite.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { waitFor } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))

const held: ServerResponse[] = []
const holder = createServer((_req, res) => void held.push(res))
let holdUrl: string
let gw: TestGateway

beforeAll(async () => {
  holder.listen(0, '127.0.0.1')
  await once(holder, 'listening')
  holdUrl = `http://127.0.0.1:${(holder.address() as AddressInfo).port}/release`
  gw = await startTestGateway({
    functions: [
      { name: 'held', module: join(FIXTURES, 'hold.ts'), concurrency: 2 },
      { name: 'single', module: join(FIXTURES, 'hold.ts'), concurrency: 1 },
    ],
    routes: [
      { id: 'held', path: '/held', function: 'held', public: true },
      { id: 'single', path: '/single', function: 'single', public: true },
    ],
    audit: { sinks: [{ type: 'sqlite', path: './audit.db' }], spill_dir: './spill', flush_interval: '50ms' },
  })
})

afterAll(async () => {
  await gw?.close()
  holder.closeAllConnections()
  holder.close()
})

const port = () => Number(new URL(gw.url).port)

const call = (requestId: string, signal?: AbortSignal, path = '/held') =>
  request(`${gw.url}${path}?hold=${encodeURIComponent(holdUrl)}`, { headers: { 'x-request-id': requestId }, signal }).then(async (res) => ({
    status: res.statusCode,
    retryAfter: res.headers['retry-after'],
    body: (await res.body.json()) as Record<string, unknown>,
  }))

describe('the concurrency cap', () => {
  it('beyond `concurrency` in flight: 503 upstream_saturated at once; served again once a worker is free', async () => {
    const first = [call('cap-1'), call('cap-2')]
    await waitFor(() => held.length === 2, 'both invocations holding their workers')
    const refused = await call('cap-3')
    expect(refused).toMatchObject({ status: 503, retryAfter: '1', body: { code: 'upstream_saturated', request_id: 'cap-3' } })
    expect(refused.body.detail).toBe('Function "held" already has 2 invocations in flight.')
    expect(held.length).toBe(2) // the refused one never reached a worker
    // A client that asks first (Expect: 100-continue) is told 503 before it uploads: it used to get
    // 100 Continue, send its whole body, and then the 503.
    const asked = await rawRequest(port(), `POST /held HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 50000\r\n\r\n`, { timeout: 3_000 })
    expect(asked.raw.slice(0, 12)).toBe('HTTP/1.1 503')
    expect(JSON.parse(asked.body)).toMatchObject({ code: 'upstream_saturated' })

    held.splice(0).forEach((res) => res.end('go'))
    for (const answer of await Promise.all(first)) expect(answer).toMatchObject({ status: 200, body: { released: true } })

    const again = call('cap-4')
    await waitFor(() => held.length === 1, 'the next invocation holding a worker')
    held.splice(0).forEach((res) => res.end('go'))
    expect(await again).toMatchObject({ status: 200 })
  })

  // The refusal is read by people: a function of one worker said "already has 1 invocations".
  it('names a single invocation in the singular', async () => {
    const first = call('one-1', undefined, '/single')
    await waitFor(() => held.length === 1, 'the invocation holding the only worker')
    const refused = await call('one-2', undefined, '/single')
    held.splice(0).forEach((res) => res.end('go'))
    expect(await first).toMatchObject({ status: 200 })
    expect(refused).toMatchObject({ status: 503, body: { code: 'upstream_saturated' } })
    expect(refused.body.detail).toBe('Function "single" already has 1 invocation in flight.')
  })

  it('a client that leaves while its invocation runs: the handler finishes (as on Lambda) and its worker is free again', async () => {
    const controller = new AbortController()
    const leaving = call('cap-left', controller.signal).catch((err: Error) => err)
    await waitFor(() => held.length === 1, 'the invocation holding a worker')
    controller.abort()
    expect(await leaving).toBeInstanceOf(Error)
    held.splice(0).forEach((res) => res.end('go'))
    const source = { type: 'sqlite' as const, path: join(gw.dir, 'audit.db') }
    let record: Record<string, unknown> | undefined
    // The log is made by the audit worker once it has started: on a busy machine, after this test's first requests.
    const records = () => searchAudit(source, { limit: 50 }).catch((err: unknown) => (err instanceof NoAuditLog ? [] : Promise.reject(err)))
    await waitFor(async () => (record = (await records()).find((r) => r.request_id === 'cap-left')) !== undefined, 'the audit record')
    expect(record).toMatchObject({ upstream: 'function:held', upstream_status: 200 })
    // Both workers are free: two calls hold them again.
    const next = [call('cap-5'), call('cap-6')]
    await waitFor(() => held.length === 2, 'two invocations holding both workers')
    held.splice(0).forEach((res) => res.end('go'))
    for (const answer of await Promise.all(next)) expect(answer.status).toBe(200)
  })
})
