// Found by an adversarial probe: what a handler wrote to process.stdout without a line break was kept
// until the next write and then logged, glued to it, under the request id of whichever invocation wrote next.
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

async function write(text: string, requestId: string): Promise<number> {
  const res = await request(`${gw.url}/hostile?mode=stdout-write&text=${encodeURIComponent(text)}`, { headers: { 'x-request-id': requestId } })
  await res.body.dump()
  return res.statusCode
}

it('a line a handler leaves unfinished on its stdout is logged under its own request id once it has answered, not glued to the next caller\'s', async () => {
  expect(await write('unfinished by fn3-a', 'fn3-a')).toBe(200)
  // The same (single) worker runs the next invocation.
  expect(await write('whole line of fn3-b\n', 'fn3-b')).toBe(200)
  await waitForText(() => gw.logs.join(''), 'whole line of fn3-b')
  const written = logLines().filter((line) => line.stream === 'stdout')
  expect(written).toEqual([
    expect.objectContaining({ function: 'hostile', request_id: 'fn3-a', msg: 'unfinished by fn3-a' }),
    expect.objectContaining({ function: 'hostile', request_id: 'fn3-b', msg: 'whole line of fn3-b' }),
  ])
})
