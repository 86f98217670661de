// A pool a reload retired lets its invocations finish. One whose handler crashed its worker there
// (an uncaught error from a timer) was answered and logged as the pool's own stop — "the gateway is
// shutting down, or a reload replaced the function, and server.shutdown_timeout has passed" — and
// the handler's error was in no log line (a probe). It is now the crash it was: 502 function_error
// saying its worker stopped, the error in the log under the request id, and no worker started for
// the retired pool, as before.
import { once } from 'node:events'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor, waitForText } from '../helpers/wait.ts'

const held: ServerResponse[] = []
const holder = createServer((_req, res) => void held.push(res))
let holdUrl: string
let gw: TestGateway

// Two workers: one left idle, so take() answers null only once the pool is closing. A short
// shutdown_timeout: the retired pool closes (takes no more) soon after the swap.
const CONFIG = {
  server: { shutdown_timeout: '100ms' },
  functions: [{ name: 'ledger', module: './functions/ledger.mjs', concurrency: 2 }],
  routes: [{ id: 'ledger', path: '/ledger', function: 'ledger', public: true }],
}

/** Held open by the test when asked; then, with `crash`, its worker ends by an error thrown from a timer. */
const ledgerModule = (version: number) => `
export async function handler(event) {
  const q = event.queryStringParameters ?? {}
  if (q.hold) await (await fetch(q.hold)).text()
  if (q.crash) {
    setTimeout(() => { throw new Error('the ledger melted') })
    return new Promise(() => {})
  }
  return { version: ${version} }
}
`

async function writeModule(version: number): Promise<void> {
  const path = join(gw.dir, 'functions', 'ledger.mjs')
  await writeFile(`${path}.next`, ledgerModule(version))
  await rename(`${path}.next`, path) // whole: a worker may be loading it
}

beforeAll(async () => {
  holder.listen(0, '127.0.0.1')
  await once(holder, 'listening')
  holdUrl = `http://127.0.0.1:${(holder.address() as AddressInfo).port}/release`
  gw = await startTestGateway({ routes: [] })
  await mkdir(join(gw.dir, 'functions'))
  await writeModule(1)
  await gw.writeConfig(CONFIG)
  expect((await gw.reload()).ok).toBe(true)
})

afterAll(async () => {
  holder.closeAllConnections()
  holder.close()
  await gw?.close()
})

describe('a retired pool whose handler crashes', () => {
  it('answers 502 saying its worker stopped, with the error in the log: not the pool\'s own stop', async () => {
    const old = gw.state.runtime.functions.get('ledger')
    const inFlight = request(`${gw.url}/ledger?crash=1&hold=${encodeURIComponent(holdUrl)}`, { headers: { 'x-request-id': 'retired-crash-1' } })
    await waitFor(() => held.length === 1, 'an invocation running')
    await writeModule(2)
    expect((await gw.reload()).ok).toBe(true)
    await waitFor(() => {
      const slot = old?.take() ?? null
      if (slot) old?.giveBack(slot)
      return slot === null
    }, 'the old pool retired, taking no more')
    held.splice(0).forEach((res) => res.end('go'))
    const res = await inFlight
    expect(res.statusCode).toBe(502)
    const body = (await res.body.json()) as { code: string; detail: string }
    expect(body.code).toBe('function_error')
    expect(body.detail).toContain('its worker stopped')
    expect(body.detail).not.toMatch(/shutting down|shutdown_timeout/)
    await waitForText(() => gw.logs.join(''), 'the ledger melted')
    const lines = gw.logs.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { request_id?: string; msg: string; err?: { message: string } })
    const line = lines.find((l) => l.request_id === 'retired-crash-1' && l.err?.message === 'the ledger melted')
    expect(line?.msg).toBe('function ledger failed: its worker stopped')
    // The new version serves.
    expect(await (await request(`${gw.url}/ledger`)).body.json()).toEqual({ version: 2 })
  })
})
