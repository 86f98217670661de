// Found by an adversarial probe (helper): on a function route with cors, the handler's own Access-Control-* headers and Vary replaced the gateway's (writeHead's list wins over setHeader), so any origin could read the answer.
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const APP = 'https://app.example'
const EVIL = 'https://evil.example'
let gateway: TestGateway
let upstream: TestUpstream

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*', vary: 'Accept-Encoding' })
    res.end(JSON.stringify({ method: req.method }))
  })
  gateway = await startTestGateway({
    functions: [{ name: 'fn', module: fileURLToPath(new URL('../fixtures/functions/own-cors.mjs', import.meta.url)) }],
    upstreams: [{ name: 'up', url: upstream.url }],
    routes: [
      { id: 'fn', path: '/fn', function: 'fn', public: true, cors: { origins: [APP], methods: ['GET'], credentials: true } },
      { id: 'up', path: '/up', upstream: 'up', public: true, cors: { origins: [APP], methods: ['GET'], credentials: true } },
    ],
  })
}, 60_000)

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

async function get(path: string, origin: string) {
  const res = await request(`${gateway.url}${path}`, { headers: { origin } })
  await res.body.dump()
  return { status: res.statusCode, headers: res.headers }
}

describe('a function route with cors: the gateway owns CORS, as on an upstream route', () => {
  it('(control) an upstream route drops the upstream\'s own CORS headers and keeps Vary: Origin', async () => {
    const evil = await get('/up', EVIL)
    expect(evil.headers['access-control-allow-origin']).toBeUndefined()
    const app = await get('/up', APP)
    expect(app.headers['access-control-allow-origin']).toBe(APP)
    expect(String(app.headers.vary)).toMatch(/origin/i)
  })

  it('from an origin not listed, the function\'s own Access-Control-* headers do not reach the browser', async () => {
    const { status, headers } = await get('/fn', EVIL)
    expect(status).toBe(200)
    expect({ acao: headers['access-control-allow-origin'], acac: headers['access-control-allow-credentials'], aceh: headers['access-control-expose-headers'] })
      .toEqual({ acao: undefined, acac: undefined, aceh: undefined })
  })

  it('from a listed origin, the answer names that origin (not the function\'s *), with credentials', async () => {
    const { headers } = await get('/fn', APP)
    expect(headers['access-control-allow-origin']).toBe(APP)
  })

  it('keeps Vary: Origin beside the function\'s own Vary (or a shared cache hands one origin\'s answer to another)', async () => {
    const { headers } = await get('/fn', APP)
    expect(String(headers.vary)).toMatch(/\borigin\b/i)
  })
})
