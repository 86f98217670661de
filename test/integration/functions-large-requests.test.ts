// Found by the functions probe: a function's event is one string in its worker, whose heap is
// `memory`, and the body was bounded by server.max_body_bytes alone. With it raised for an upload
// route (128 MB), one anonymous POST of 48 MB to a public function of 32 MB aborted the whole
// gateway (V8 "Reached heap limit" as the worker took the event). A function's event is now at most
// 6 MB (6,291,456 bytes: Lambda's limit on a synchronous invocation's request): past it 413
// payload_too_large, audited, and the gateway answers on. A real `bouncer serve`, so an abort shows
// as its exit, not as the test runner's.
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { waitFor } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
const MAX_EVENT_BYTES = 6_291_456

let serve: ServeProcess & { dir: string }

beforeAll(async () => {
  serve = await serveConfig((dir) => ({
    server: { listen: '127.0.0.1:0', max_body_bytes: 128 * 1_048_576 },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '50ms' },
    functions: [{ name: 'size', module: join(FIXTURES, 'body-size.mjs'), memory: '32MB', concurrency: 1 }],
    routes: [{ id: 'size', methods: ['POST'], path: '/size', function: 'size', public: true }],
  }))
})

afterAll(async () => {
  await serve?.stop('SIGKILL')
})

/**
 * The body written a megabyte at a time, as the connection takes it, until the answer comes: the
 * gateway stops reading a body it refuses, so a client writing it all would meet EPIPE first.
 */
function post(body: Buffer, contentType: string, requestId: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    let answered = false
    const req = httpRequest(`${serve.url}/size`, { method: 'POST', headers: { 'content-type': contentType, 'content-length': body.length, 'x-request-id': requestId } }, (res) => {
      answered = true
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }))
      res.on('error', reject)
    })
    req.on('error', (err) => answered || reject(err))
    void (async () => {
      for (let at = 0; at < body.length && !answered && !req.destroyed; at += 1_048_576) {
        if (!req.write(body.subarray(at, at + 1_048_576))) await Promise.race([once(req, 'drain'), once(req, 'response'), once(req, 'close')])
      }
      if (!answered) req.end()
    })().catch((err: unknown) => answered || reject(err))
  })
}

async function auditRecord(requestId: string): Promise<Record<string, unknown>> {
  const source = { type: 'sqlite' as const, path: join(serve.dir, 'audit.db') }
  let record: Record<string, unknown> | undefined
  const found = () => searchAudit(source, { limit: 50 }).then((rows) => rows.find((r) => r.request_id === requestId), () => undefined) // no log until the first batch
  await waitFor(async () => (record = await found()) !== undefined, `the audit record of ${requestId}`)
  return record as Record<string, unknown>
}

describe('a request body larger than a function\'s event may hold', () => {
  it('48 MB to a 32 MB function, under max_body_bytes: 413 payload_too_large naming the limit, audited; the gateway answers on', async () => {
    const refused = await post(Buffer.alloc(48 * 1_048_576, 7), 'application/octet-stream', 'big-48mb').catch((err: NodeJS.ErrnoException) => err)
    // The gateway stops reading a body it refuses and closes the connection after its answer: on a
    // busy machine the client's next write can meet that close (EPIPE) before it reads the answer.
    if (!(refused instanceof Error)) {
      expect(refused).toMatchObject({ status: 413, body: { code: 'payload_too_large', request_id: 'big-48mb' } })
      expect(refused.body.detail).toBe(`The request is too large for a function: its body exceeds ${MAX_EVENT_BYTES} bytes, Lambda's limit on a synchronous invocation's request.`)
    } else {
      expect(['EPIPE', 'ECONNRESET']).toContain(refused.code)
    }
    expect(await auditRecord('big-48mb')).toMatchObject({ status: 413, code: 'payload_too_large', upstream: 'function:size' })
    expect(await post(Buffer.from('{}'), 'application/json', 'after-48mb')).toMatchObject({ status: 200, body: { bytes: 2 } })
    expect(serve.child.exitCode).toBeNull()
  })

  it('a body under the limit whose base64 in the event is over it: 413 saying so', async () => {
    const refused = await post(Buffer.alloc(5 * 1_048_576, 7), 'application/octet-stream', 'big-base64')
    expect(refused).toMatchObject({ status: 413, body: { code: 'payload_too_large' } })
    expect(refused.body.detail).toBe(`The request is too large for a function: its event (the body as base64, the headers and the rest) exceeds ${MAX_EVENT_BYTES} bytes, Lambda's limit on a synchronous invocation's request.`)
  })

  it('bodies just under it reach the handler whole, in a 32 MB function: 4 MB of bytes, 6 MB of text in two-byte characters', async () => {
    expect(await post(Buffer.alloc(4 * 1_048_576, 7), 'application/octet-stream', 'under-binary')).toMatchObject({ status: 200, body: { bytes: 4 * 1_048_576 } })
    const text = Buffer.from('ж'.repeat(3_000_000))
    expect(await post(text, 'text/plain; charset=utf-8', 'under-text')).toMatchObject({ status: 200, body: { bytes: text.length } })
  })
})
