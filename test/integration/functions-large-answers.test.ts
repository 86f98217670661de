// Found by a probe: a handler returning `{ data: 'y'.repeat(200 MB) }` from a 64 MB function aborted
// the whole gateway (V8 "heap out of memory" inside JSON.stringify in the worker), and a 100 MB
// body reached the client whole after passing through the gateway's thread. A function answers at
// most 6 MB (6,291,556 bytes: Lambda's limit), checked in its worker before anything is serialized
// or posted: past it the client gets 502 function_error naming the limit, the request is audited,
// the worker is reused, and the gateway answers the next request. The sizes here are just past the
// limit: the bound, not the heap, must refuse them.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor, waitForText } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
const LIMIT = 6_291_556

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    // One worker: the call after a refused answer runs on the same one, unless it was replaced.
    functions: [{ name: 'big', module: join(FIXTURES, 'large-answers.mjs'), memory: '64MB', timeout: '20s', concurrency: 1 }],
    routes: [{ id: 'big', path: '/big', function: 'big', public: true }],
    audit: { sinks: [{ type: 'sqlite', path: './audit.db' }], spill_dir: './spill', flush_interval: '50ms' },
  })
})

afterAll(async () => {
  await gw?.close()
})

async function call(query: string, requestId: string): Promise<{ status: number; body: string; length: string | undefined }> {
  const res = await request(`${gw.url}/big?${query}`, { headers: { 'x-request-id': requestId } })
  return { status: res.statusCode, body: await res.body.text(), length: res.headers['content-length'] as string | undefined }
}

async function auditRecord(requestId: string): Promise<Record<string, unknown>> {
  const source = { type: 'sqlite' as const, path: join(gw.dir, 'audit.db') }
  let record: Record<string, unknown> | undefined
  const found = () => searchAudit(source, { limit: 100 }).then((rows) => rows.find((r) => r.request_id === requestId), () => undefined) // no log until the first batch
  await waitFor(async () => (record = await found()) !== undefined, `the audit record of ${requestId}`)
  return record as Record<string, unknown>
}

/** The worker's invocation count: one more than before means the same worker answered. */
async function invocations(requestId: string): Promise<number> {
  const { status, body } = await call('mode=count', requestId)
  expect(status).toBe(200)
  return (JSON.parse(body) as { invocations: number }).invocations
}

/** 502 function_error whose detail names the limit, audited as the function's error. */
async function expectRefused(query: string, requestId: string): Promise<void> {
  const { status, body } = await call(query, requestId)
  expect(status, query).toBe(502)
  const problem = JSON.parse(body) as { code: string; detail: string; request_id: string }
  expect(problem, query).toMatchObject({ code: 'function_error', request_id: requestId })
  expect(problem.detail).toBe(`Function "big" answered more than ${LIMIT} bytes (6 MB), the most a function may answer: Lambda's limit for a synchronous invocation's response.`)
}

describe('a function answering more than 6 MB', () => {
  it('an object whose JSON is over the limit is 502 function_error naming it, audited; the same worker answers the next call', async () => {
    const before = await invocations('large-count-1')
    await expectRefused(`mode=object&bytes=${LIMIT}`, 'large-object')
    expect(await auditRecord('large-object')).toMatchObject({ status: 502, code: 'function_error', upstream: 'function:big', route: 'big' })
    await waitForText(() => gw.logs.join(''), /"request_id":"large-object"[^\n]*"msg":"function big answered more than 6291556 bytes: its answer was refused"/)
    // Reused, not replaced: the refused answer left nothing behind in it.
    expect(await invocations('large-count-2')).toBe(before + 2)
  })

  it('a string body one byte over the limit is 502 function_error, audited; the gateway answers the next call', async () => {
    await expectRefused(`mode=body&bytes=${LIMIT + 1}`, 'large-body')
    expect(await auditRecord('large-body')).toMatchObject({ status: 502, code: 'function_error', upstream: 'function:big' })
    expect((await call('mode=count', 'large-after-body')).status).toBe(200)
  })

  it('a body just under the limit is 200 with the whole body', async () => {
    const size = 6 * 1_048_576 // 100 bytes under, with room for its Content-Type
    const { status, body, length } = await call(`mode=body&bytes=${size}`, 'large-under')
    expect({ status, length, size: body.length, whole: body === 'y'.repeat(size) }).toEqual({ status: 200, length: String(size), size, whole: true })
    expect(await auditRecord('large-under')).toMatchObject({ status: 200, upstream_status: 200, bytes_out: size })
  })

  it('every other place an answer carries bytes is bounded the same way', async () => {
    const places = ['string', 'numbers', 'to-json', 'base64', 'header', 'cookies', 'multi-value']
    for (const mode of places) await expectRefused(`mode=${mode}&bytes=${LIMIT + 4}`, `large-${mode}`)
    // Under the limit the same ways answer as they did.
    expect((await call(`mode=to-json&bytes=${LIMIT - 100}`, 'large-to-json-under')).status).toBe(200)
    // base64 counts as the text the handler gave, as Lambda counts it: 6,000,000 characters, 4,500,000 bytes sent.
    expect((await call('mode=base64&bytes=6000000', 'large-base64-under')).length).toBe('4500000')
  })

  it('a `result` the handler posts itself over the limit is 502 function_error, not sent', async () => {
    const { status, body } = await call(`mode=post-result&bytes=${LIMIT + 1}`, 'large-posted')
    expect(status).toBe(502)
    expect(JSON.parse(body)).toMatchObject({ code: 'function_error', detail: `Function "big" returned a response that is not valid: it is larger than ${LIMIT} bytes.` })
  })

  it('a 2 MB log line or thrown message is left out of the log, not copied whole to the gateway', async () => {
    const bytes = 2 * 1_048_576
    expect((await call(`mode=log&bytes=${bytes}`, 'large-log')).status).toBe(200)
    const thrown = await call(`mode=throw&bytes=${bytes}`, 'large-throw')
    expect(thrown.status).toBe(502)
    expect(JSON.parse(thrown.body)).toMatchObject({ code: 'function_error', request_id: 'large-throw' })
    const logs = () => gw.logs.join('')
    await waitForText(logs, /"request_id":"large-log"[^\n]*too long to log/)
    await waitForText(logs, /"request_id":"large-throw"[^\n]*too long to log/)
    expect(Math.max(...gw.logs.map((line) => line.length))).toBeLessThan(64 * 1024)
  })
})
