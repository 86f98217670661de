// Found by an adversarial probe (helper): a function's `memory` bounded only its JS heap: a handler keeping 32 MB Buffers answered 200 ten times at `memory: 64MB` and grew the gateway's process by hundreds of MB.
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
    functions: [{ name: 'keeper', module: join(FIXTURES, 'hostile.mjs'), concurrency: 1, memory: '64MB' }],
    routes: [{ id: 'keeper', path: '/keeper', function: 'keeper', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
})

it('a worker holding Buffers past `memory` is replaced once it has answered: its module state never holds more', async () => {
  const kept: number[] = []
  for (let i = 0; i < 6; i++) {
    const res = await request(`${gw.url}/keeper?mode=buffers`, { headers: { 'x-request-id': `keep-${i}` } })
    expect(res.statusCode).toBe(200) // the invocation that went over is answered; its worker goes after
    kept.push(((await res.body.json()) as { keptMb: number }).keptMb)
  }
  // 32 MB, then 64 MB and over `memory` with the heap: replaced, a fresh worker starts again from 32.
  expect(kept).toEqual([32, 64, 32, 64, 32, 64])
  const logs = await waitForText(() => gw.logs.join(''), 'holds more than its memory')
  const line = logs.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => String(l.msg).includes('holds more than its memory'))
  expect(line).toMatchObject({ function: 'keeper', request_id: 'keep-1', memory_mb: 64 })
})
