// Found by an adversarial probe: what a handler writes to process.stdout itself, as the log shows it.
// A line without its line break was kept until the next write and then logged, glued to it, under
// the request id of whichever invocation wrote next; bytes were decoded write by write, so a UTF-8
// character cut between two writes (a piped stream's chunks) was logged as three U+FFFD.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor, waitForText } from '../helpers/wait.ts'

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

const stdoutLines = (...requestIds: string[]) => gw.logs.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)
  .filter((line) => line.stream === 'stdout' && requestIds.includes(line.request_id as string))

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
  expect(stdoutLines('fn3-a', 'fn3-b')).toEqual([
    expect.objectContaining({ function: 'hostile', request_id: 'fn3-a', msg: 'unfinished by fn3-a' }),
    expect.objectContaining({ function: 'hostile', request_id: 'fn3-b', msg: 'whole line of fn3-b' }),
  ])
})

it('a character whose UTF-8 bytes come in two writes to process.stdout is logged as that character', async () => {
  // "total: 5 " is 9 bytes; the euro sign's 3 bytes are cut after the first.
  const res = await request(`${gw.url}/hostile?mode=stdout-bytes&at=10&text=${encodeURIComponent('total: 5 € due')}`, { headers: { 'x-request-id': 'fn3-bytes' } })
  expect(res.statusCode).toBe(200)
  await res.body.dump()
  await waitFor(() => stdoutLines('fn3-bytes').length > 0, 'the line in the log')
  expect(stdoutLines('fn3-bytes')).toEqual([expect.objectContaining({ request_id: 'fn3-bytes', msg: 'total: 5 € due' })])
})
