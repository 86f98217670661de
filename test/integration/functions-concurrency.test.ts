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
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
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
    functions: [{ name: 'held', module: join(FIXTURES, 'hold.ts'), concurrency: 2 }],
    routes: [{ id: 'held', path: '/held', function: 'held', public: true }],
  })
})

afterAll(async () => {
  await gw?.close()
  holder.closeAllConnections()
  holder.close()
})

const call = (requestId: string) =>
  request(`${gw.url}/held?hold=${encodeURIComponent(holdUrl)}`, { headers: { 'x-request-id': requestId } }).then(async (res) => ({
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

    held.splice(0).forEach((res) => res.end('go'))
    for (const answer of await Promise.all(first)) expect(answer).toMatchObject({ status: 200, body: { released: true } })

    const again = call('cap-4')
    await waitFor(() => held.length === 1, 'the next invocation holding a worker')
    held.splice(0).forEach((res) => res.end('go'))
    expect(await again).toMatchObject({ status: 200 })
  })
})
