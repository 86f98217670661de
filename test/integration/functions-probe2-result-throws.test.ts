// A result whose own code throws while it is read (a getter, a toJSON) is the handler's error, as
// one it threw: 502 function_error with the request id, the message in the gateway's log only. Its
// message went to the client in the detail ("cannot be serialized as JSON: connect failed:
// postgres://app:s3cret-pw@…"), a thrown null ended the worker (the next call a cold start), a
// thrown string was said to be "undefined" (a probe). JSON's own refusals (a cycle) still say why.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    functions: [{ name: 'reads', module: join(FIXTURES, 'result-throws.mjs'), timeout: '5s', concurrency: 1 }],
    routes: [{ id: 'reads', path: '/reads', function: 'reads', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
})

async function call(mode: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${gw.url}/reads?mode=${mode}`)
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> }
}

it('a getter of the result that throws is the handler\'s error: its message is in the log, not the answer', async () => {
  const { status, body } = await call('getter')
  expect(status).toBe(502)
  expect(body.code).toBe('function_error')
  expect(JSON.stringify(body)).not.toContain('s3cret-pw')
  expect(body.detail).toBe('Function "reads" failed. The gateway\'s log has the error under this request id.')
  const line = gw.logs.find((l) => l.includes(body.request_id as string) && l.includes('s3cret-pw'))
  expect(line).toBeDefined()
})

it('a toJSON throwing null or a string fails its call alone: the worker stays, the value is not shown', async () => {
  const before = (await call('count')).body.invocations as number
  const thrownNull = await call('null')
  expect(thrownNull.status).toBe(502)
  expect(thrownNull.body.detail).toBe('Function "reads" failed. The gateway\'s log has the error under this request id.')
  const thrownString = await call('string')
  expect(thrownString.status).toBe(502)
  expect(JSON.stringify(thrownString.body)).not.toContain('abc123')
  expect(thrownString.body.detail).toBe('Function "reads" failed. The gateway\'s log has the error under this request id.')
  // The same worker answers: its module's count went on (a replaced one starts again at 1).
  expect((await call('count')).body.invocations).toBe(before + 3)
  expect(gw.logs.some((l) => l.includes('its worker stopped'))).toBe(false)
})

it('a result JSON cannot hold (a cycle) still says so', async () => {
  const { status, body } = await call('circular')
  expect(status).toBe(502)
  expect(body.detail).toMatch(/cannot be serialized as JSON: Converting circular structure to JSON/)
})
