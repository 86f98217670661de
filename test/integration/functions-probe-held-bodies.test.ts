// A function's request body is read whole and held in the gateway until its event is handed to a
// worker. Nothing bounded how many were held at once: sixty anonymous 6 MB uploads to a public
// function of concurrency 1 held 300 MB of the gateway (a probe), where forms, held whole the same
// way, share server.form_body_total_bytes. A function's body now takes its share of that total too,
// waiting (its upload unread) past it, and gives it back once its event is the worker's.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formBudget } from '../../src/gateway/form-budget.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor } from '../helpers/wait.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
const BODY = 1_000_000
let upstream: TestUpstream
let gw: TestGateway
/** The upstream answers /held (and so the `hold` function's invocation ends) once this resolves. */
const release = deferred()
/** The upstream answers /forms/slow, whose form holds its share until then, once this resolves. */
const slowForm = deferred()

const config = (server: Record<string, unknown>) => ({
  server: { max_body_bytes: BODY, form_body_total_bytes: 1_500_000, request_timeout: '20s', ...server },
  functions: [
    { name: 'size', module: join(FIXTURES, 'body-size.mjs'), concurrency: 4 },
    { name: 'hold', module: join(FIXTURES, 'hold.ts'), concurrency: 1 },
  ],
  routes: [
    { id: 'size', path: '/size/*', methods: ['POST', 'PUT'], function: 'size', public: true },
    { id: 'hold', path: '/hold', methods: ['POST'], function: 'hold', public: true },
    { id: 'forms', path: '/forms/*', methods: ['POST'], upstream: 'app', public: true },
  ],
  upstreams: [{ name: 'app', url: upstream.url }],
})

beforeAll(async () => {
  upstream = await startUpstream(async (req, res) => {
    await (req.url === '/held' ? release.promise : slowForm.promise)
    res.end('released')
  })
  gw = await startTestGateway(config({}))
})
afterAll(async () => {
  release.resolve()
  slowForm.resolve()
  await gw?.close()
  await upstream?.close()
})

/** A binary POST whose first `sent` bytes of `bytes` are written; the rest waits for `finish`. `answer`: what came back once the connection closes. */
function slowUpload(path: string, bytes: number, sent: number): { finish(): void; answer: Promise<string> } {
  const socket: Socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  const body = Buffer.alloc(bytes, 7)
  socket.write(`POST ${path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes}\r\nConnection: close\r\n\r\n`)
  socket.write(body.subarray(0, sent))
  socket.on('error', () => {}) // the answer, or its absence, is what the test reads
  let answer = ''
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
  return { finish: () => socket.write(body.subarray(sent)), answer: once(socket, 'close').then(() => answer) }
}

const binary = (path: string, method = 'POST') => request(`${gw.url}${path}`, { method, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(BODY, 1) })

describe("a function's request bodies held at once", () => {
  it('a body past form_body_total_bytes waits, unread, until the one before it is handed to its worker; then both are answered whole', async () => {
    const first = slowUpload('/size/first', BODY, 100_000) // past the pipeline's first window (64 KiB)
    await waitFor(() => formBudget().held === BODY, 'the first upload holding its share')
    const second = binary('/size/second', 'PUT')
    await waitFor(() => formBudget().waiting === 1, 'the second upload waiting')
    first.finish()
    const answer = await first.answer
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 200 OK')
    expect(answer).toContain(`"bytes":${BODY}`)
    const answered = await second
    expect(answered.statusCode).toBe(200)
    expect(await answered.body.json()).toMatchObject({ bytes: BODY })
    await waitFor(() => formBudget().held === 0 && formBudget().waiting === 0, 'every share given back')
  })

  it('the share is given back once the event is the worker\'s, not held while the handler runs', async () => {
    const holding = request(`${gw.url}/hold?hold=${encodeURIComponent(`${upstream.url}/held`)}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(BODY, 1) })
    await waitFor(() => upstream.started.includes('/held'), 'the handler running')
    expect(formBudget().held).toBe(0)
    const other = await binary('/size/meanwhile')
    expect(other.statusCode).toBe(200)
    expect(await other.body.json()).toMatchObject({ bytes: BODY })
    release.resolve()
    const held = await holding
    expect(held.statusCode).toBe(200)
    expect(await held.body.json()).toEqual({ released: true })
  })

  it('a form or JSON POST, whose share the gateway took to read its _method, takes no second one', async () => {
    const answered = await request(`${gw.url}/size/form`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `a=${'x'.repeat(BODY - 2)}` })
    expect(answered.statusCode).toBe(200)
    expect(await answered.body.json()).toMatchObject({ bytes: BODY })
    await waitFor(() => formBudget().held === 0, 'its share given back')
  })

  it('a body that cannot have a share by request_timeout is 408, saying why', async () => {
    await gw.writeConfig(config({ request_timeout: '1s' }))
    expect((await gw.reload()).ok).toBe(true)
    // A form's share is held until its answer ends: its upstream holds it past request_timeout.
    const holding = request(`${gw.url}/forms/slow`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `a=${'x'.repeat(BODY - 2)}` })
    await waitFor(() => upstream.received.some((r) => r.url === '/forms/slow'), 'the form forwarded whole')
    expect(formBudget().held).toBe(BODY)
    const late = await binary('/size/late')
    expect(late.statusCode).toBe(408)
    expect(await late.body.json()).toMatchObject({ code: 'request_timeout', detail: expect.stringContaining('form_body_total_bytes') })
    slowForm.resolve()
    expect((await holding).statusCode).toBe(200)
    await waitFor(() => formBudget().held === 0 && formBudget().waiting === 0, 'every share given back')
  })
})
