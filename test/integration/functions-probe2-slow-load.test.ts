// A module whose load overruns the 10 s it has outside an invocation's time goes on loading within
// the function's timeout, as Lambda retries an init that overran within the invocation. Its worker
// was terminated at 10 s and a new one started loading from the beginning: a module taking 11 s
// answered 504 to every call, and never served while calls kept coming (a probe).
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    functions: [{ name: 'slow', module: join(FIXTURES, 'loads-in-11s.mjs'), timeout: '5s', concurrency: 1 }],
    routes: [{ id: 'slow', path: '/slow', function: 'slow', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
})

it('a call made as the gateway starts is answered once the 11 s load is done', { timeout: 25_000 }, async () => {
  const res = await request(`${gw.url}/slow`)
  const body = await res.body.text()
  expect(res.statusCode, body).toBe(200)
  expect(JSON.parse(body)).toEqual({ ok: true })
  expect(gw.logs.join('')).toContain('function slow is still loading its module after 10000ms: its invocation waits up to its timeout more')
  expect(gw.logs.join('')).not.toContain('its worker was terminated and replaced')
})
