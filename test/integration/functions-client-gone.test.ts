// Found by a probe: a client that left while its function ran was audited as the function's 200 with
// the whole body counted as sent (bytes_out), where an HTTP upstream's route records 499. The
// function's answer now goes nowhere and the record says 499, nothing sent.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
let dir: string
let holder: TestUpstream
let gateway: TestGateway
/** The function's hold request, answered when the test says so. */
const held = deferred<ServerResponse>()

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-fn-gone-'))
  holder = await startUpstream((_req, res) => held.resolve(res))
  gateway = await startTestGateway({
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    functions: [{ name: 'hold', module: join(FIXTURES, 'hold.ts') }],
    routes: [{ id: 'hold', path: '/hold', function: 'hold', public: true }],
  })
}, 30_000)

afterAll(async () => {
  await gateway?.close()
  await holder?.close()
  await rm(dir, { recursive: true, force: true })
})

it('a client gone while its function runs is recorded as 499 with nothing sent', async () => {
  const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  socket.on('error', () => {})
  socket.write(`GET /hold?hold=${encodeURIComponent(`${holder.url}/x`)} HTTP/1.1\r\nHost: gw\r\nX-Request-Id: fn-gone\r\n\r\n`)
  const release = await held.promise // the function is running
  socket.destroy()
  await once(socket, 'close')
  // A round trip on another connection after the close: the gateway (in this process) has read the FIN by then.
  await (await request(`${gateway.adminUrl}/healthz`)).body.dump()
  release.end('go')
  const record = await waitForAuditRecord(join(dir, 'audit.db'), 'fn-gone')
  expect({ status: record.status, bytes_out: record.bytes_out, detail: record.detail }).toEqual({
    status: 499, bytes_out: 0, detail: 'The client closed the connection before the answer began.',
  })
})
