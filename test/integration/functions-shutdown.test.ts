// Found by the functions probe: on SIGTERM the gateway cut the connections still open at
// server.shutdown_timeout, then waited for each function invocation still running to end, up to its
// own timeout (60 s here; Lambda's handlers may take 15 min), for clients it had cut off already:
// a supervisor's grace period ended it by SIGKILL first. The pool's close now stops them; the
// process exits 0 just after shutdown_timeout, the request audited as cut (499).
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { waitFor, waitForText } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
const held: ServerResponse[] = []
const holder = createServer((_req, res) => void held.push(res))
let gateway: ServeProcess & { dir: string }

beforeAll(async () => {
  holder.listen(0, '127.0.0.1')
  await once(holder, 'listening')
  gateway = await serveConfig((dir) => ({
    server: { listen: '127.0.0.1:0', shutdown_timeout: '1s' },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    functions: [{ name: 'held', module: join(FIXTURES, 'hold.ts'), timeout: '60s', concurrency: 1 }],
    routes: [{ id: 'held', path: '/held', function: 'held', public: true }],
  }))
})

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  holder.closeAllConnections()
  holder.close()
})

it('SIGTERM with an invocation running past shutdown_timeout: it is stopped, the process exits 0 just after, the request audited as cut', async () => {
  const holdUrl = `http://127.0.0.1:${(holder.address() as AddressInfo).port}/never`
  const call = request(`${gateway.url}/held?hold=${encodeURIComponent(holdUrl)}`, { headers: { 'x-request-id': 'cut-at-shutdown' } }).catch((err: Error) => err)
  await waitFor(() => held.length === 1, 'the invocation holding its worker')
  const stopped = Date.now()
  gateway.child.kill('SIGTERM')
  await waitForText(gateway.stderr, '"msg":"draining"')
  expect(await gateway.exited).toBe(0)
  expect(Date.now() - stopped).toBeLessThan(10_000) // before: the function's timeout, 60 s
  expect(await call).toBeInstanceOf(Error) // its connection cut at shutdown_timeout
  expect(gateway.stderr()).toMatch(/"request_id":"cut-at-shutdown".*function held was stopped before it answered/)
  const db = new DatabaseSync(join(gateway.dir, 'audit.db'), { readOnly: true })
  expect(db.prepare("SELECT status, upstream FROM audit_records WHERE request_id = 'cut-at-shutdown'").get()).toEqual({ status: 499, upstream: 'function:held' })
  db.close()
}, 60_000)
