// A function's event carries the request's W3C tracestate beside the traceparent, as an upstream's
// request does (README: the event's headers are the ones an upstream would get). It carried the
// traceparent only: a handler continuing the trace lost the vendors' state its caller sent (a
// probe). What is sent is the gateway's (validated, bounded), as upstream/request.ts sends it.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
const TRACESTATE = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  gw = await startTestGateway({
    upstreams: [{ name: 'api', url: upstream.url }],
    functions: [{ name: 'echo', module: join(FIXTURES, 'echo.ts'), concurrency: 1 }],
    routes: [
      { id: 'echo', path: '/echo', function: 'echo', public: true },
      { id: 'api', path: '/api', upstream: 'api', public: true },
    ],
  })
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
})

it('the event has the tracestate an upstream gets, with the trace id both continue', async () => {
  const headers = { traceparent: TRACEPARENT, tracestate: TRACESTATE }
  const toUpstream = await request(`${gw.url}/api`, { headers })
  await toUpstream.body.text()
  const upstreamGot = upstream.received.at(-1)?.headers as Record<string, string> | undefined
  expect(upstreamGot?.tracestate).toBe(TRACESTATE)
  const res = await request(`${gw.url}/echo`, { headers })
  const { event } = (await res.body.json()) as { event: { headers: Record<string, string> } }
  expect(event.headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-/)
  expect(event.headers.tracestate).toBe(TRACESTATE)
})
