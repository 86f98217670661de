// Found by an adversarial probe (helper): on a TLS listener a function's event said x-forwarded-proto: http, where the upstream request of the same route says https.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPki, type TestPki } from '../helpers/certs.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'

const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))
let gw: TestGateway
let dispatcher: Agent
let pki: TestPki

beforeAll(async () => {
  pki = createPki()
  dispatcher = new Agent({ connect: { ca: readFileSync(pki.ca.cert), servername: 'localhost' } })
  gw = await startTestGateway({
    server: { tls: { cert: pki.server.cert, key: pki.server.key } },
    functions: [{ name: 'echo', module: join(FIXTURES, 'echo.ts'), concurrency: 1 }],
    routes: [{ id: 'echo', path: '/echo', function: 'echo', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
  await dispatcher?.close()
  pki?.close()
})

it('a client on a TLS listener is x-forwarded-proto: https in the event', async () => {
  expect(gw.url.startsWith('https:')).toBe(true)
  const res = await request(`${gw.url}/echo`, { dispatcher })
  expect(res.statusCode).toBe(200)
  const { event } = (await res.body.json()) as { event: { headers: Record<string, string> } }
  expect(event.headers['x-forwarded-proto']).toBe('https')
})
