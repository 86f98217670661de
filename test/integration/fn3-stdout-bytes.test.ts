// Found by an adversarial probe: bytes a handler wrote to process.stdout were decoded write by write,
// so a UTF-8 character cut between two writes (a piped stream's chunks) was logged as three U+FFFD.
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
    functions: [{ name: 'hostile', module: join(FIXTURES, 'hostile.mjs'), concurrency: 1 }],
    routes: [{ id: 'hostile', path: '/hostile', function: 'hostile', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
})

const stdoutLines = () => gw.logs.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.stream === 'stdout')

it('a character whose UTF-8 bytes come in two writes to process.stdout is logged as that character', async () => {
  // "total: 5 " is 9 bytes; the euro sign's 3 bytes are cut after the first.
  const res = await request(`${gw.url}/hostile?mode=stdout-bytes&at=10&text=${encodeURIComponent('total: 5 € due')}`, { headers: { 'x-request-id': 'fn3-bytes' } })
  expect(res.statusCode).toBe(200)
  await res.body.dump()
  await waitFor(() => stdoutLines().length > 0, 'the line in the log')
  expect(stdoutLines()).toEqual([expect.objectContaining({ request_id: 'fn3-bytes', msg: 'total: 5 € due' })])
})
