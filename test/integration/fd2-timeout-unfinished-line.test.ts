// Found by an adversarial probe: what a handler wrote to its stdout without a line break is logged
// once its invocation ends, under its request id; one that timed out never ended in its worker (it
// was terminated), and that last line was lost, though it is often the one that says where the
// handler was stuck ("connecting to db..."). A crashed worker's (process.exit) too.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    functions: [{ name: 'hostile', module: join(FIXTURES, 'hostile.mjs'), concurrency: 1, timeout: '300ms' }],
    routes: [{ id: 'hostile', path: '/hostile', function: 'hostile', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
})

const stdoutLines = (requestId: string) => gw.logs.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)
  .filter((line) => line.stream === 'stdout' && line.request_id === requestId)

it.each([['awaiting', ''], ['in a loop', '&loop=1']])('the unfinished last line of a handler that timed out %s is logged under its request id', async (_how, loop) => {
  const requestId = `fd2-hang${loop === '' ? '' : '-loop'}`
  const text = `step 1 done\nconnecting to the db of ${requestId}...`
  const res = await request(`${gw.url}/hostile?mode=stdout-then-hang${loop}&text=${encodeURIComponent(text)}`, { headers: { 'x-request-id': requestId } })
  expect(res.statusCode).toBe(504)
  await res.body.dump()
  await waitFor(() => stdoutLines(requestId).length >= 2, 'both lines in the log')
  expect(stdoutLines(requestId)).toEqual([
    expect.objectContaining({ function: 'hostile', request_id: requestId, msg: 'step 1 done' }),
    expect.objectContaining({ function: 'hostile', request_id: requestId, msg: `connecting to the db of ${requestId}...` }),
  ])
})

it('the unfinished last line of a handler that ended its worker (process.exit) is logged under its request id', async () => {
  const res = await request(`${gw.url}/hostile?mode=stdout-then-hang&exit=1&text=${encodeURIComponent('about to exit')}`, { headers: { 'x-request-id': 'fd2-exit' } })
  expect(res.statusCode).toBe(502)
  await res.body.dump()
  await waitFor(() => stdoutLines('fd2-exit').length > 0, 'the line in the log')
  expect(stdoutLines('fd2-exit')).toEqual([expect.objectContaining({ function: 'hostile', request_id: 'fd2-exit', msg: 'about to exit' })])
})
