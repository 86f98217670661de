// Cross-site request forgery with a client certificate: a browser presents its certificate on a
// connection whatever page makes the request, as it sends a session cookie, so a form on another
// origin's page POSTed to a client_cert route as the certificate's holder (a form post needs no
// preflight: nothing of CORS stops it). Only a WebSocket handshake by certificate was held to the
// gateway's own Origin. A state-changing request by certificate that carries an Origin (a browser's)
// now needs that origin too, as one by session cookie does; one without Origin (a service's client,
// not a browser) goes on, and so do GET and HEAD from any page (their answer is the browser's to
// keep from it, by CORS).
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientCertGateway, createPki, type Issued, type TestPki } from '../helpers/certs.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let upstream: TestUpstream
let gateway: TestGateway
let loader: Issued
let agent: Agent

beforeAll(async () => {
  pki = createPki()
  loader = pki.ca.issue('loader', { usage: 'client', san: ['URI:spiffe://prod/ns/etl/sa/loader'] })
  upstream = await startUpstream()
  gateway = await clientCertGateway(pki, upstream.url, { anyCaller: true })
  agent = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost', cert: readFileSync(loader.cert), key: readFileSync(loader.key) } })
}, 60_000)

afterAll(async () => {
  await agent?.close()
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

/** A request presenting the loader's certificate, as a browser holding it sends one for any page. */
async function send(method: string, origin: string | null): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`https://localhost:${new URL(gateway.url).port}/data/transfer`, {
    dispatcher: agent,
    method: method as 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(origin === null ? {} : { origin }) },
    body: method === 'GET' || method === 'HEAD' ? undefined : 'to=mallory&amount=1000',
  })
  const text = await res.body.text()
  return { status: res.statusCode, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} }
}

const own = () => `https://localhost:${new URL(gateway.url).port}`

describe('a state-changing request by client certificate', () => {
  it('from another origin\'s page is refused 403 cors_origin_denied and never reaches the upstream', async () => {
    const before = upstream.received.length
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const origin of ['https://evil.example', 'null', `http://localhost:${new URL(gateway.url).port}`]) {
        const answer = await send(method, origin)
        expect(answer.status, `${method} from ${origin}`).toBe(403)
        expect(answer.body).toMatchObject({ code: 'cors_origin_denied', detail: `A ${method} request signed in by client certificate must come from ${own()}, not from another origin (cross-site request forgery protection).` })
      }
    }
    expect(upstream.received.length).toBe(before)
  })

  it('from the gateway\'s own origin, or without Origin (a service, not a browser), goes on', async () => {
    expect((await send('POST', own())).status).toBe(200)
    expect((await send('POST', null)).status).toBe(200)
    expect((await send('DELETE', null)).status).toBe(200)
  })

  it('a GET from another origin goes on as before: reading is CORS\'s business', async () => {
    expect((await send('GET', 'https://evil.example')).status).toBe(200)
  })
})
