// Found by an adversarial probe (helper): a function answering `isBase64Encoded: true` with a body that is not
// base64 (JSON never encoded, a cut string, quotes around it) was sent as a 200 of other bytes, audited as a
// success: Node's base64 decoder skips what is not base64. Such an answer is malformed, as API Gateway calls
// it: 502 function_error saying why, audited so. Base64 in the standard or the URL-safe alphabet, padded or
// not, is still sent as its bytes.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { searchAudit } from '../../src/audit/search.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))

let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway({
    functions: [{ name: 'b64', module: join(FIXTURES, 'base64-answers.mjs'), concurrency: 1 }],
    routes: [{ id: 'b64', path: '/b64', function: 'b64', public: true }],
    audit: { sinks: [{ type: 'sqlite', path: './audit.db' }], spill_dir: './spill', flush_interval: '50ms' },
  })
})

afterAll(async () => {
  await gw?.close()
})

async function call(kind: string, requestId: string): Promise<{ status: number; body: Buffer }> {
  const res = await request(`${gw.url}/b64?kind=${kind}`, { headers: { 'x-request-id': requestId } })
  return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) }
}

async function auditRecord(requestId: string): Promise<Record<string, unknown>> {
  const source = { type: 'sqlite' as const, path: join(gw.dir, 'audit.db') }
  let record: Record<string, unknown> | undefined
  const found = () => searchAudit(source, { limit: 100 }).then((rows) => rows.find((r) => r.request_id === requestId), () => undefined) // no log until the first batch
  await waitFor(async () => (record = await found()) !== undefined, `the audit record of ${requestId}`)
  return record as Record<string, unknown>
}

describe('a function answering isBase64Encoded: true', () => {
  it('base64 in the standard or the URL-safe alphabet, padded or not, is sent as its bytes', async () => {
    const bytes = Buffer.from([0xfb, 0xff, 0xbf, 0x00, 0x01, 0x7e])
    expect(await call('standard', 'b64-standard')).toEqual({ status: 200, body: bytes })
    expect(await call('url-safe', 'b64-url-safe')).toEqual({ status: 200, body: bytes })
    expect(await call('standard-unpadded', 'b64-unpadded')).toEqual({ status: 200, body: Buffer.from([0xfb, 0xff]) })
    expect(await auditRecord('b64-standard')).toMatchObject({ status: 200, decision: 'allow', upstream: 'function:b64', bytes_out: 6 })
  })

  const refusals: Array<[string, string]> = [
    ['not-encoded', 'the character "{" at 0 is not base64'],
    ['wrapped-in-quotes', 'the character "\\"" at 0 is not base64'],
    ['line-broken', 'the character "\\n" at 4 is not base64'],
    ['cut', '5 characters is no length base64 has: it is cut, or wrongly padded'],
  ]
  for (const [kind, why] of refusals) {
    it(`a body that is not base64 (${kind}) is 502 function_error saying so, audited as such`, async () => {
      const requestId = `b64-${kind}`
      const { status, body } = await call(kind, requestId)
      expect(status).toBe(502)
      const problem = JSON.parse(body.toString()) as Record<string, unknown>
      expect(problem).toMatchObject({
        code: 'function_error',
        request_id: requestId,
        detail: `Function "b64" returned a response that is not valid: isBase64Encoded is true, but body is not base64: ${why}.`,
      })
      expect(await auditRecord(requestId)).toMatchObject({ status: 502, code: 'function_error', upstream: 'function:b64', route: 'b64' })
    })
  }
})
