// HEAD is GET without the body: a route that takes GET takes HEAD, and a statement naming GET names
// HEAD (gateway/router.ts). Its cors did not: a page's HEAD with an Authorization header (a download
// size, a freshness check) is preflighted, and a route whose cors lists GET answered that preflight
// 403 cors_origin_denied ("may not send HEAD requests"), so the browser failed a request the route,
// its policies and its CORS headers all allow. cors.methods' GET now grants HEAD's preflight too.
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { allowAnyCaller, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { AUDIENCE, startIdentityProvider, type TestIdentityProvider } from '../helpers/identity-provider.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const PAGE = 'https://lookerstudio.google.com'
let idp: TestIdentityProvider
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  idp = await startIdentityProvider()
  upstream = await startUpstream()
  gateway = await startTestGateway({
    issuers: [{ name: 'corp', issuer: idp.issuer, audiences: [AUDIENCE] }],
    ...allowAnyCaller(['corp']),
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [
      { id: 'reports', methods: ['GET'], path: '/reports/*', upstream: 'api', cors: { origins: [PAGE], methods: ['GET'], headers: ['authorization'] } },
      { id: 'uploads', methods: ['GET', 'POST'], path: '/uploads/*', upstream: 'api', cors: { origins: [PAGE], methods: ['POST'], headers: ['authorization'] } },
    ],
  })
  await waitFor(() => gateway.state.runtime.issuerKeys.get('corp')?.state === 'ready', 'the issuer keys')
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
  await idp?.stop()
})

async function send(method: string, path: string, headers: Record<string, string>) {
  const res = await request(`${gateway.url}${path}`, { method: method as 'GET', headers })
  await res.body.dump()
  return { status: res.statusCode, headers: res.headers }
}

it('grants the preflight of a HEAD on a route whose cors lists GET, and the HEAD itself is answered with the CORS headers', async () => {
  const preflight = await send('OPTIONS', '/reports/daily.csv', { origin: PAGE, 'access-control-request-method': 'HEAD', 'access-control-request-headers': 'authorization' })
  expect(preflight.status).toBe(204)
  expect(preflight.headers).toMatchObject({ 'access-control-allow-origin': PAGE, 'access-control-allow-headers': 'authorization' })
  const head = await send('HEAD', '/reports/daily.csv', { origin: PAGE, authorization: `Bearer ${await idp.token('looker-reports')}` })
  expect(head.status).toBe(200)
  expect(head.headers['access-control-allow-origin']).toBe(PAGE)
})

it('grants HEAD only where GET is listed', async () => {
  const refused = await send('OPTIONS', '/uploads/x', { origin: PAGE, 'access-control-request-method': 'HEAD' })
  expect(refused.status).toBe(403)
  expect(refused.headers).not.toHaveProperty('access-control-allow-origin')
})

// Found by the CORS probe: a POST refused for the method its query's `_method` names (405: the route
// takes no DELETE) was refused while the route was matched, before the CORS step, so its answer had
// neither Access-Control-Allow-Origin nor Vary: Origin, and the page could not read why.
it('a POST refused for the method its _method names is readable by the page, as every answer of a cors route is', async () => {
  const refused = await send('POST', '/uploads/x?_method=DELETE', { origin: PAGE, authorization: `Bearer ${await idp.token('looker-reports')}` })
  expect(refused.status).toBe(405)
  expect(refused.headers['access-control-allow-origin']).toBe(PAGE)
  expect(String(refused.headers.vary)).toMatch(/\bOrigin\b/i)
})
