// Found by an adversarial probe (helper): a console line from a timer an earlier invocation left behind was logged under the request id of whichever invocation ran when it fired.
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
    functions: [{ name: 'hostile', module: join(FIXTURES, 'hostile.mjs'), concurrency: 1 }],
    routes: [{ id: 'hostile', path: '/hostile', function: 'hostile', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
})

const logLines = () => gw.logs.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)

async function call(query: string, requestId: string): Promise<number> {
  const res = await request(`${gw.url}/hostile?${query}`, { headers: { 'x-request-id': requestId } })
  await res.body.dump()
  return res.statusCode
}

it("a late console line carries the request id of the invocation that left the timer, not the next caller's", async () => {
  expect(await call('mode=late-log&after=200', 'late-a')).toBe(200)
  // The same (single) worker runs this one while the timer fires.
  const later = call('mode=sleep&ms=1500', 'late-b')
  await waitForText(() => gw.logs.join(''), 'late line of late-a')
  expect(await later).toBe(200)
  expect(logLines().find((line) => line.msg === 'late line of late-a')).toMatchObject({ function: 'hostile', request_id: 'late-a' })
})
