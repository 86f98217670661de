// Found by an adversarial probe (helper): an HTTP/2 stream whose request body never comes was
// answered 408 at request_timeout but not reset: it stayed half-closed (local), waiting for the
// client's END_STREAM. The session tracker arms its idle timer only when no stream is open, so the
// connection was held for good, past every timeout: a client sending one HEADERS frame per
// connection and then nothing filled max_connections and locked every other client out.
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { FLAG, frame, FRAME, headerBlock, rawH2, type RawH2 } from '../helpers/h2-frames.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let pki: TestPki
let ca: Buffer
let upstream: TestUpstream
let gateway: TestGateway
const MAX_CONNECTIONS = 20

beforeAll(async () => {
  pki = createPki()
  ca = readFileSync(pki.ca.cert)
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: {
      tls: { cert: pki.server.cert, key: pki.server.key },
      http2: true,
      hosts: ['localhost'],
      max_connections: MAX_CONNECTIONS,
      headers_timeout: '1s',
      request_timeout: '2s',
      keep_alive_timeout: '1s',
      send_timeout: '2s',
    },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  })
})
afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  pki?.close()
})

const postHeaders = (path: string) => headerBlock([[':method', 'POST'], [':scheme', 'https'], [':path', path], [':authority', 'localhost']])

async function silentStream(): Promise<RawH2> {
  const raw = await rawH2(gateway.url, ca)
  raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, postHeaders('/upload'))) // a body follows... never
  return raw
}

describe('HTTP/2 stream whose body never comes', () => {
  it('is answered 408, then reset, and its session is closed once idle', async () => {
    const raw = await silentStream()
    const answer = await raw.waitFor((f) => f.stream === 1 && f.type === FRAME.HEADERS, 'the 408', 5_000)
    expect(answer.payload.toString('latin1')).toContain('408') // HPACK: 408 is a literal, not in the static table
    await raw.waitFor((f) => f.stream === 1 && f.type === FRAME.RST_STREAM, 'the stream reset after its answer', 5_000)
    // Then the idle session goes: keep_alive_timeout 1 s (+ send_timeout 2 s for the GOAWAY).
    await raw.closed
    }, 20_000)

  it(`${MAX_CONNECTIONS} connections each holding one such stream do not lock other clients out past every timeout`, async () => {
    const attackers: RawH2[] = []
    for (let i = 0; i < MAX_CONNECTIONS; i++) attackers.push(await silentStream())
    // Each is answered 408 at request_timeout (2 s), reset, and closed once idle (keep_alive_timeout 1 s).
    await Promise.all(attackers.map((raw) => raw.closed))
    const agent = new Agent({ connect: { ca, servername: 'localhost' } })
    let outcome: number | string
    try {
      const res = await request(`${gateway.url}/victim`, { dispatcher: agent, headersTimeout: 3_000 })
      await res.body.text()
      outcome = res.statusCode
    } catch (e) {
      outcome = `${(e as Error).name}: ${(e as Error).message}`
    }
    await agent.close()
    for (const raw of attackers) raw.socket.destroy()
    expect(outcome).toBe(200)
  }, 30_000)
})
