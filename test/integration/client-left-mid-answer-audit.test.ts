// Found by an adversarial probe (helper): a client that closed its connection after reading part of a large
// answer — an upstream's, a dataset's, a function's — was audited as a plain 200 allow with no word, only
// bytes_out hinting at the cut. The record keeps the status that was sent and says the client left before
// the answer ended. A whole answer, HEAD, 204 and 304 say nothing of the sort.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { SHARED_POSTGRES } from '../helpers/postgres.ts'
import { startUpstream, writeLargeAnswer, type TestUpstream } from '../helpers/upstream.ts'
import { readAtLeast } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
const MB = 1024 * 1024
const CLIENT_LEFT = 'The client closed the connection before the answer ended.'
let dir: string
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-client-left-'))
  upstream = await startUpstream(async (req, res) => {
    if (req.url === '/up/empty') return void res.writeHead(204).end()
    if (req.url === '/up/same') return void res.writeHead(304, { etag: '"v1"' }).end()
    if (req.url === '/up/small') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('small')
    await writeLargeAnswer(res, 64 * MB, req.method === 'HEAD')
  })
  gateway = await startTestGateway({
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    datasources: [{ name: 'pg', type: 'postgres', url: SHARED_POSTGRES, max_connections: 2, key: 'a-test-key-of-32-characters-long' }],
    functions: [{ name: 'big', module: join(FIXTURES, 'large-answers.mjs'), timeout: '20s', concurrency: 1 }],
    routes: [
      { id: 'up', path: '/up/*', upstream: 'api', public: true },
      // About 100 MB of JSON when n is 100,000.
      { id: 'rows', methods: ['GET', 'HEAD'], path: '/rows', public: true, dataset: { source: 'pg', sql: "SELECT g AS id, repeat('x', 1000) AS pad FROM generate_series(1, :n) g", params: { n: { type: 'int', required: true } } } },
      { id: 'fn', path: '/fn', function: 'big', public: true },
    ],
  })
}, 30_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

const record = (requestId: string) => waitForAuditRecord(join(dir, 'audit.db'), requestId)

/**
 * A raw HTTP/1.1 client that does not read for `pauseMs` (the kernel's buffers fill, the answer's end
 * waits in the gateway), then reads `bytes` and closes its socket.
 */
async function leaveAfter(path: string, requestId: string, bytes: number, pauseMs = 0): Promise<number> {
  const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.pause()
  socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\nX-Request-Id: ${requestId}\r\n\r\n`)
  if (pauseMs > 0) await sleep(pauseMs)
  const read = await readAtLeast(socket, bytes)
  socket.destroy()
  return read
}

describe('a client that leaves mid-answer', () => {
  it('from an HTTP upstream: the record keeps the 200 and says the client left', async () => {
    await leaveAfter('/up/big', 'left-upstream', 1 * MB)
    const cut = await record('left-upstream')
    expect(cut).toMatchObject({ status: 200, decision: 'allow', upstream: 'api', code: null, detail: CLIENT_LEFT })
    expect(cut.bytes_out).toBeLessThan(64 * MB)
  }, 30_000)

  it('from a dataset: the record keeps the 200 and says the client left', async () => {
    await leaveAfter('/rows?n=100000', 'left-dataset', 1 * MB)
    const cut = await record('left-dataset')
    expect(cut).toMatchObject({ status: 200, decision: 'allow', upstream: 'dataset:pg', code: null, detail: CLIENT_LEFT })
    expect(cut.bytes_out).toBeLessThan(100 * MB)
  }, 30_000)

  it('from a function (its whole answer written at once, the end waiting for the client): the record says the client left', async () => {
    // 6,000,000 bytes: more than a client that does not read lets the kernel hold.
    await leaveAfter('/fn?mode=body&bytes=6000000', 'left-function', 64 * 1024, 500)
    const cut = await record('left-function')
    expect(cut).toMatchObject({ status: 200, decision: 'allow', upstream: 'function:big', code: null, detail: CLIENT_LEFT })
  }, 30_000)
})

describe('a whole answer says nothing of the sort', () => {
  async function whole(path: string, requestId: string, method = 'GET', headers: Record<string, string> = {}): Promise<number> {
    const res = await request(`${gateway.url}${path}`, { method: method as 'GET', headers: { 'x-request-id': requestId, ...headers } })
    for await (const chunk of res.body) void chunk // to its end, however large
    return res.statusCode
  }

  it('small and large answers of each backend read to the end, HEAD, 204 and 304', async () => {
    const cases: Array<[string, string, string, number, Record<string, string>?]> = [
      ['/up/small', 'whole-upstream', 'GET', 200],
      ['/up/big', 'whole-upstream-large', 'GET', 200],
      ['/up/big', 'whole-upstream-head', 'HEAD', 200],
      ['/up/empty', 'whole-upstream-204', 'GET', 204],
      ['/up/same', 'whole-upstream-304', 'GET', 304, { 'if-none-match': '"v1"' }],
      ['/rows?n=10', 'whole-dataset', 'GET', 200],
      ['/rows?n=20000', 'whole-dataset-large', 'GET', 200],
      ['/rows?n=10', 'whole-dataset-head', 'HEAD', 200],
      ['/fn?mode=body&bytes=10', 'whole-function', 'GET', 200],
      ['/fn?mode=body&bytes=6000000', 'whole-function-large', 'GET', 200],
    ]
    for (const [path, requestId, method, status, headers] of cases) {
      expect(await whole(path, requestId, method, headers), requestId).toBe(status)
      expect(await record(requestId), requestId).toMatchObject({ status, decision: 'allow', code: null, detail: null })
    }
  }, 60_000)
})
