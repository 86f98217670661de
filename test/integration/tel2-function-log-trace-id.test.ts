// The README: a request's trace id is "in the gateway's log lines about the request". A function's
// lines — its handler's console lines, and the gateway's own when it throws — carried request_id
// alone: a tracing backend's jump from a trace to its logs (by trace_id) found none of them.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitForText } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    functions: [
      { name: 'hostile', module: join(FIXTURES, 'hostile.mjs') },
      { name: 'throws', module: join(FIXTURES, 'throw.ts') },
    ],
    routes: [
      { id: 'hostile', path: '/hostile', function: 'hostile', public: true },
      { id: 'throws', path: '/throws', function: 'throws', public: true },
    ],
  })
})
afterAll(async () => {
  await gw?.close()
})

const lineOf = (msg: string) => gw.logs.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === msg)

async function call(path: string, requestId: string, traceId: string): Promise<void> {
  await (await request(`${gw.url}${path}`, { headers: { 'x-request-id': requestId, traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })).body.dump()
}

it('a function\'s console line, even one its timer writes after the answer, carries the request\'s trace id', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  await call('/hostile?mode=late-log&after=50', 'fn-log', traceId)
  await waitForText(() => gw.logs.join(''), 'late line of fn-log')
  expect(lineOf('late line of fn-log')).toMatchObject({ request_id: 'fn-log', trace_id: traceId })
})

it('the gateway\'s line about a function that threw carries the request\'s trace id', async () => {
  const traceId = '5bf92f3577b34da6a3ce929d0e0e4737'
  await call('/throws', 'fn-throw', traceId)
  await waitForText(() => gw.logs.join(''), 'function throws threw')
  expect(lineOf('function throws threw')).toMatchObject({ request_id: 'fn-throw', trace_id: traceId })
})
