// Form POST bodies are held whole before anything is forwarded (their `_method` fields decide the
// request), each up to server.max_body_bytes, and nothing bounded them together: a thousand
// authorized uploads at once held ten gigabytes. All forms together now hold at most
// server.form_body_total_bytes: a form past it waits, its upload unread, until others are forwarded.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formBudget } from '../../src/gateway/form-budget.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { echo, startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor } from '../helpers/wait.ts'

const FORM = 1_000_000
let upstream: TestUpstream
let gw: TestGateway
/** The upstream answers /forms/slow once this resolves. */
const slowAnswer = deferred()

const config = (server: Record<string, unknown>) => ({
  server: { max_body_bytes: FORM, form_body_total_bytes: 1_500_000, request_timeout: '20s', ...server },
  upstreams: [{ name: 'app', url: upstream.url }],
  routes: [{ id: 'forms', path: '/forms/*', methods: ['POST'], upstream: 'app', public: true }],
})

beforeAll(async () => {
  upstream = await startUpstream(async (req, res, received) => {
    if (req.url === '/forms/slow') await slowAnswer.promise
    return echo(req, res, received)
  })
  gw = await startTestGateway(config({}))
})
afterAll(async () => {
  await gw?.close()
  await upstream?.close()
})

/** An urlencoded form of `bytes` bytes. */
const form = (bytes: number) => `a=${'x'.repeat(bytes - 2)}`

/** A form POST whose first `sent` bytes of `bytes` are written; the rest waits for `finish` (or the client leaves). `status`: the answer's status line once the connection closes. */
function slowForm(path: string, bytes: number, sent: number): { finish(): void; leave(): void; status: Promise<string> } {
  const socket: Socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  const body = form(bytes)
  socket.write(`POST ${path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${bytes}\r\nConnection: close\r\n\r\n${body.slice(0, sent)}`)
  let answer = ''
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
  const status = once(socket, 'close').then(() => answer.split('\r\n')[0] as string)
  return { finish: () => socket.write(body.slice(sent)), leave: () => socket.destroy(), status }
}

describe('form bodies held at once', () => {
  it('a form past form_body_total_bytes waits, unread, until the form before it is forwarded; then both reach the upstream whole', async () => {
    const first = slowForm('/forms/first', FORM, 1_000)
    await waitFor(() => formBudget().held === FORM, 'the first form holding its share')
    const second = request(`${gw.url}/forms/second`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form(FORM) })
    await waitFor(() => formBudget().waiting === 1, 'the second form waiting')
    expect(upstream.started).toEqual([])
    first.finish()
    expect(await first.status).toBe('HTTP/1.1 200 OK')
    const answered = await second
    await answered.body.dump()
    expect(answered.statusCode).toBe(200)
    expect(upstream.received.map((r) => [r.url, r.bodyBytes])).toEqual([['/forms/first', FORM], ['/forms/second', FORM]])
    await waitFor(() => formBudget().held === 0 && formBudget().waiting === 0, 'every share given back')
  })

  it('a form whose client leaves while it waits gives its place in the queue back', async () => {
    const first = slowForm('/forms/holding', FORM, 1_000)
    await waitFor(() => formBudget().held === FORM, 'the first form holding its share')
    const leaving = slowForm('/forms/leaving', FORM, 0)
    await waitFor(() => formBudget().waiting === 1, 'the second form waiting')
    leaving.leave()
    await waitFor(() => formBudget().waiting === 0, 'the queue empty again')
    first.finish()
    expect(await first.status).toBe('HTTP/1.1 200 OK')
    await waitFor(() => formBudget().held === 0, 'every share given back')
    expect(upstream.started).not.toContain('/forms/leaving')
  })

  it('a share is held until the answer ends; a form that cannot have one by request_timeout is 408, never forwarded', async () => {
    await gw.writeConfig(config({ request_timeout: '1s' }))
    expect((await gw.reload()).ok).toBe(true)
    const holding = request(`${gw.url}/forms/slow`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form(FORM) })
    await waitFor(() => upstream.received.some((r) => r.url === '/forms/slow'), 'the first form forwarded whole')
    expect(formBudget().held).toBe(FORM)
    const late = await request(`${gw.url}/forms/late`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form(FORM) })
    expect(late.statusCode).toBe(408)
    expect(await late.body.json()).toMatchObject({ code: 'request_timeout', detail: expect.stringContaining('form_body_total_bytes') })
    slowAnswer.resolve()
    const held = await holding
    await held.body.dump()
    expect(held.statusCode).toBe(200)
    expect(upstream.started).not.toContain('/forms/late')
    await waitFor(() => formBudget().held === 0 && formBudget().waiting === 0, 'every share given back')
  })

  it('a lone form larger than the total is let in: a small total slows uploads, it never refuses them', async () => {
    await gw.writeConfig(config({ form_body_total_bytes: 1_000 }))
    expect((await gw.reload()).ok).toBe(true)
    const answered = await request(`${gw.url}/forms/lone`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form(FORM) })
    await answered.body.dump()
    expect(answered.statusCode).toBe(200)
    expect(upstream.received.at(-1)).toMatchObject({ url: '/forms/lone', bodyBytes: FORM })
  })
})
