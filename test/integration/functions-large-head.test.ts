// Found by an adversarial probe (helper): a function's headers and cookies were sent however large
// (20,000 headers, one of 5 MB), which no client read (Node and undici read 16 KiB of a head), and
// the request was audited as 200. An HTTP upstream's head over 16 KiB is 502 upstream_error; a
// function's is now 502 function_error, saying why.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitForAuditRecord } from '../helpers/audit.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
let gw: TestGateway

beforeAll(async () => {
  gw = await startTestGateway((dir) => ({
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill'), flush_interval: '20ms' },
    functions: [{ name: 'head', module: join(FIXTURES, 'large-head.mjs') }],
    routes: [{ id: 'head', path: '/head', function: 'head', public: true }],
  }))
}, 30_000)

afterAll(async () => {
  await gw?.close()
})

describe('a function answering with a head larger than 16 KiB', () => {
  it.each([
    ['20,000 headers', 'mode=many&bytes=440000'],
    ['one header of 5 MB', 'mode=one&bytes=5000000'],
    ['cookies of 20 KB', 'mode=cookies&bytes=20000'],
    ['headers just over 16 KiB', 'mode=many&bytes=16500'],
  ])('%s: 502 function_error saying so, audited; the next call answers', async (what, query) => {
    const id = `large-head-${what.replaceAll(/\W+/g, '-')}`
    const res = await request(`${gw.url}/head?${query}`, { headers: { 'x-request-id': id } })
    const body = (await res.body.json()) as Record<string, unknown>
    expect(res.statusCode).toBe(502)
    expect(body).toMatchObject({ code: 'function_error', request_id: id })
    expect(String(body.detail)).toMatch(/its headers and cookies take \d+ bytes, more than the 16384/)
    const record = await waitForAuditRecord(join(gw.dir, 'audit.db'), id)
    expect({ status: record.status, code: record.code }).toEqual({ status: 502, code: 'function_error' })
    const next = await request(`${gw.url}/head?mode=many&bytes=100`)
    await next.body.dump()
    expect(next.statusCode).toBe(200)
  })

  it('headers under 16 KiB are sent whole', async () => {
    const res = await request(`${gw.url}/head?mode=many&bytes=15000`)
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('ok')
    expect(Object.keys(res.headers).filter((name) => name.startsWith('x-h'))).toHaveLength(Math.ceil(15000 / 22))
  })
})
