// Found by an adversarial probe: process.stdout.write(text, 'hex') (or 'base64', 'latin1') writes
// the bytes the text encodes, as a terminal shows them; the gateway's capture of a handler's stdout
// logged the encoded text itself ("68656c6c6f…"), its line break unseen inside it.
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

const stdoutLines = (requestId: string) => gw.logs.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)
  .filter((line) => line.stream === 'stdout' && line.request_id === requestId)

it.each(['hex', 'base64', 'base64url', 'latin1', 'utf16le'])('a write to process.stdout in %s is logged as the text it encodes', async (encoding) => {
  const text = encoding === 'latin1' ? 'caf\u00e9 at 5' : 'total: 5 \u20ac due'
  const requestId = `fd2-${encoding}`
  const res = await request(`${gw.url}/hostile?mode=stdout-encoded&encoding=${encoding}&text=${encodeURIComponent(text)}`, { headers: { 'x-request-id': requestId } })
  expect(res.statusCode).toBe(200)
  await res.body.dump()
  await waitFor(() => stdoutLines(requestId).length > 0, 'the line in the log')
  expect(stdoutLines(requestId)).toEqual([expect.objectContaining({ request_id: requestId, msg: text })])
})
