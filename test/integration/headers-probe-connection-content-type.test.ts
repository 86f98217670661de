// A POST's Content-Type named in its own Connection header: the gateway read the type (JSON, so no
// form `_method` to judge: http/method-override.ts) and then removed the field as one for this hop
// only, so the upstream got a POST with no Content-Type, which Rack, Laravel and Express's
// method-override read as a form: `_method=DELETE` in the body ran a DELETE the caller is denied,
// on a route the gateway authorized as the POST it came as. The upstream here reads the body's
// `_method` as Rack::MethodOverride does (no Content-Type: a form).
import { METHODS, type IncomingMessage } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rawPost, startOverrideGateway, type OverrideSetup } from '../helpers/method-override.ts'

let setup: OverrideSetup
const ran: string[] = []
const types: Array<string | undefined> = []

/** As Rack::MethodOverride: a POST whose type is a form, or absent, runs as its body's `_method`. */
async function rackLike(req: IncomingMessage): Promise<string> {
  types.push(req.headers['content-type'])
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const body = Buffer.concat(chunks).toString('latin1')
  let method = req.method ?? ''
  const type = req.headers['content-type'] ?? 'application/x-www-form-urlencoded'
  if (method === 'POST' && /^application\/x-www-form-urlencoded/i.test(type)) {
    const named = new URLSearchParams(body).get('_method')?.toUpperCase()
    if (named !== undefined && METHODS.includes(named)) method = named
  }
  return `${method} ${req.url ?? ''}`
}

beforeAll(async () => {
  setup = await startOverrideGateway((req, res) => {
    void rackLike(req).then((done) => {
      ran.push(done)
      res.end(`${done} ran`)
    })
  }, { id: 'forms', path: '/forms/*' }, () => ({}))
})

afterAll(() => setup?.close())

describe('a POST whose Connection header names its Content-Type', () => {
  it('control: a JSON POST reaches the upstream as JSON and runs as the POST it is', async () => {
    const res = await rawPost(Number(new URL(setup.gateway.url).port), setup.token, '/archive/a', Buffer.from('_method=DELETE'), ['Content-Type: application/json'])
    expect(res.status, res.body).toBe(200)
    expect(ran.at(-1)).toBe('POST /archive/a')
    expect(types.at(-1)).toBe('application/json')
  })

  it('is refused (400 bad_request), never forwarded without the type the gateway judged it by (there: a form, run as its `_method` DELETE)', async () => {
    const before = ran.length
    const res = await rawPost(Number(new URL(setup.gateway.url).port), setup.token, '/archive/b', Buffer.from('_method=DELETE'), ['Content-Type: application/json', 'Connection: content-type'])
    expect(ran.slice(before), res.body).not.toContain('DELETE /archive/b')
    expect(res.status, res.body).toBe(400)
    expect(JSON.parse(res.body)).toMatchObject({ code: 'bad_request', detail: expect.stringContaining('content-type') })
    expect(ran.length).toBe(before)
  })

  it('Content-Length named too (Connection: keep-alive, Content-Length): 400, nothing forwarded', async () => {
    const before = ran.length
    const res = await rawPost(Number(new URL(setup.gateway.url).port), setup.token, '/archive/c', Buffer.from('{}'), ['Content-Type: application/json', 'Connection: keep-alive, Content-Length'])
    expect(res.status, res.body).toBe(400)
    expect(ran.length).toBe(before)
  })
})
