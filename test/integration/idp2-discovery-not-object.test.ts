// A discovery document that is JSON but no object (`null`, a list) is refused for what it is: found
// by a probe, `null` made the key load fail with "Cannot read properties of null (reading
// 'issuer')", which /readyz and every token's 503 repeated.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { importJWK, SignJWT } from 'jose'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { allowAnyCaller, readyz, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, signingKey } from '../helpers/identity-provider.ts'
import { waitFor } from '../helpers/wait.ts'

const answers: Record<string, string> = { '/null/.well-known/openid-configuration': 'null', '/list/.well-known/openid-configuration': '[]' }
const provider = createServer((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(answers[req.url ?? ''] ?? '{}'))
let base: string
let gateway: TestGateway

beforeAll(async () => {
  provider.listen(0, '127.0.0.1')
  await once(provider, 'listening')
  base = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`
  const names = ['null', 'list']
  gateway = await startTestGateway({
    issuers: names.map((name) => ({ name, issuer: `${base}/${name}`, audiences: [AUDIENCE] })),
    ...allowAnyCaller(names),
    upstreams: [{ name: 'data', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'data', path: '/*', upstream: 'data' }],
  })
  await waitFor(() => names.every((name) => gateway.state.runtime.issuerKeys.get(name)?.attempted === true), 'the first key loads')
})

afterAll(async () => {
  await gateway?.close()
  provider.closeAllConnections()
  provider.close()
  await once(provider, 'close')
})

it.each(['null', 'list'])('discovery answering JSON that is no object (%s): its 503 and /readyz say so', async (name) => {
  const key = await signingKey('k1', 'ES256')
  const now = Math.floor(Date.now() / 1000)
  const token = await new SignJWT({ iss: `${base}/${name}`, aud: AUDIENCE, sub: 'svc', exp: now + 300 })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .sign(await importJWK(key.privateJwk, 'ES256'))
  const res = await request(`${gateway.url}/x`, { headers: { authorization: `Bearer ${token}` } })
  const body = (await res.body.json()) as { code?: string; detail?: string }
  expect({ status: res.statusCode, code: body.code }).toEqual({ status: 503, code: 'identity_provider_unavailable' })
  expect(body.detail).toContain('answered 200 with JSON that is not an object')
  expect(JSON.stringify((await readyz(gateway)).checks)).toContain('answered 200 with JSON that is not an object')
})
