// Found by a review: a malformed request pipelined behind one still being answered got its raw 400
// at once, ahead of the earlier request's answer, so the client read the 400 as the first
// request's answer (and that answer, written after, went nowhere). The refusal now waits for the
// answers before it on its connection.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor } from '../helpers/wait.ts'

let dir: string
let upstream: TestUpstream
let gateway: TestGateway
const release = deferred<void>()

beforeAll(async () => {
  upstream = await startUpstream(async (req, res) => {
    if (req.url === '/slow') await release.promise
    res.end('slow answer')
  })
  dir = await mkdtemp(join(tmpdir(), 'bouncer-pipelined-'))
  gateway = await startTestGateway({
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'any', path: '/*', upstream: 'api', public: true }],
  })
}, 30_000)

afterAll(async () => {
  release.resolve()
  await gateway?.close()
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

it('a malformed request pipelined behind a slow one is refused after the slow one\'s answer, not in its place', async () => {
  const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  await once(socket, 'connect')
  socket.on('error', () => {})
  let received = ''
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')))
  socket.write('GET /slow HTTP/1.1\r\nHost: gw\r\n\r\nGET /x HTTP/1.1\r\nHost: gw\r\nBad Header: x\r\n\r\n')
  await waitFor(() => upstream.received.some((r) => r.url === '/slow'), 'the slow request at the upstream')
  release.resolve()
  await waitFor(() => received.includes('HTTP/1.1 400'), 'the refusal', 10_000)
  const first = received.indexOf('HTTP/1.1 200')
  expect(first).toBe(0) // the first answer the client reads is its first request's
  expect(received.indexOf('slow answer')).toBeLessThan(received.indexOf('HTTP/1.1 400'))
  socket.destroy()
  // Each has its record: the slow one's 200, the refusal's 400.
  const statuses = async () => (await searchAudit({ type: 'sqlite', path: join(dir, 'audit.db') }, { limit: 10 }).catch(() => [])).map((r) => `${r.path} ${r.status}`).sort()
  await waitFor(async () => (await statuses()).length === 2, 'both records')
  expect(await statuses()).toEqual(['- 400', '/slow 200'])
})
