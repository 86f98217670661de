// A handler taking Lambda's three parameters (event, context, callback) may answer with what it
// returns, a promise, instead of the callback: Lambda's Node.js runtime takes any thenable there.
// Only a native Promise was taken here, so one from a promise library or a query builder was left
// unread, and the call answered 504 function_timeout after the function's timeout (a probe).
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    functions: [{ name: 'thenable', module: join(FIXTURES, 'thenable-callback.cjs'), timeout: '2s', concurrency: 1 }],
    routes: [{ id: 'thenable', path: '/thenable', function: 'thenable', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
})

it('a callback-style handler answering with a thenable is answered with what it resolves to', async () => {
  const res = await request(`${gw.url}/thenable`)
  expect(res.statusCode).toBe(200)
  expect(res.headers['content-type']).toBe('text/plain')
  expect(await res.body.text()).toBe('from a thenable')
})
