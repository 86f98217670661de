// client-left-mid-answer-audit.test.ts over HTTP/2: a client that resets its stream (RST_STREAM
// CANCEL, a browser leaving the page) or drops its connection after part of a large answer — an
// upstream's, or a function's written whole and waiting for the client — is recorded with the
// status that was sent and says the client left. A stream read to its end says nothing of the sort.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { constants, type ClientHttp2Session } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { createPki, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { closeWithin, h2Session, startH2Gateway } from '../helpers/h2-gateway.ts'
import { startUpstream, writeLargeAnswer, type TestUpstream } from '../helpers/upstream.ts'
import { readAtLeast } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
const MB = 1024 * 1024
const CLIENT_LEFT = 'The client closed the connection before the answer ended.'
let dir: string
let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-client-left-h2-'))
  pki = createPki()
  // HTTP/2's flow control holds what the gateway sends to what the client reads.
  upstream = await startUpstream((_req, res) => writeLargeAnswer(res, 64 * MB))
  gateway = await startH2Gateway(pki, upstream.url, {}, {
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    functions: [{ name: 'big', module: join(FIXTURES, 'large-answers.mjs'), timeout: '20s', concurrency: 1 }],
    routes: [
      { id: 'fn', path: '/fn', function: 'big', public: true },
      { id: 'all', path: '/*', upstream: 'api', public: true },
    ],
  })
}, 30_000)

afterAll(async () => {
  await closeWithin(gateway)
  await upstream?.close()
  pki?.close()
  await rm(dir, { recursive: true, force: true })
})

const record = (requestId: string) => waitForAuditRecord(join(dir, 'audit.db'), requestId)

/** Reads `bytes` of the answer on `path`, then leaves as `leave` says: the stream reset, or the whole connection dropped. */
async function leaveAfter(path: string, requestId: string, bytes: number, leave: 'reset' | 'drop'): Promise<{ client: ClientHttp2Session; status: number }> {
  const client = await h2Session(gateway.url, readFileSync(pki.ca.cert))
  const stream = client.request({ ':path': path, 'x-request-id': requestId }, { endStream: true })
  stream.on('error', () => {})
  let status = 0
  stream.on('response', (headers) => (status = Number(headers[':status'])))
  await readAtLeast(stream, bytes)
  if (leave === 'reset') stream.close(constants.NGHTTP2_CANCEL)
  else client.destroy()
  return { client, status }
}

describe('an HTTP/2 client that leaves mid-answer', () => {
  it('resetting its stream, from an HTTP upstream: the record keeps the 200 and says the client left', async () => {
    const { client, status } = await leaveAfter('/big', 'h2-reset-upstream', 1 * MB, 'reset')
    expect(status).toBe(200)
    const cut = await record('h2-reset-upstream')
    client.close()
    expect(cut).toMatchObject({ status: 200, decision: 'allow', upstream: 'api', code: null, detail: CLIENT_LEFT })
    expect(cut.bytes_out).toBeLessThan(64 * MB)
  }, 30_000)

  it('dropping its connection, from an HTTP upstream: the same', async () => {
    await leaveAfter('/big', 'h2-drop-upstream', 1 * MB, 'drop')
    expect(await record('h2-drop-upstream')).toMatchObject({ status: 200, decision: 'allow', upstream: 'api', code: null, detail: CLIENT_LEFT })
  }, 30_000)

  it('resetting its stream, from a function (its whole answer written, the end waiting for the client): the same', async () => {
    // 6,000,000 bytes: far more than the stream's flow-control window lets the gateway send unread.
    const { client } = await leaveAfter('/fn?mode=body&bytes=6000000', 'h2-reset-function', 64 * 1024, 'reset')
    const cut = await record('h2-reset-function')
    client.close()
    expect(cut).toMatchObject({ status: 200, decision: 'allow', upstream: 'function:big', code: null, detail: CLIENT_LEFT })
  }, 30_000)

  it('a stream read to its end says nothing of the sort', async () => {
    const client = await h2Session(gateway.url, readFileSync(pki.ca.cert))
    for (const [path, requestId] of [['/big', 'h2-whole-upstream'], ['/fn?mode=body&bytes=6000000', 'h2-whole-function']] as const) {
      const stream = client.request({ ':path': path, 'x-request-id': requestId }, { endStream: true })
      let read = 0
      stream.on('data', (chunk: Buffer) => (read += chunk.length))
      await once(stream, 'end')
      expect(read, requestId).toBe(path === '/big' ? 64 * MB : 6_000_000)
      expect(await record(requestId), requestId).toMatchObject({ status: 200, decision: 'allow', code: null, detail: null })
    }
    client.close()
  }, 60_000)
})
