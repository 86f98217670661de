// Found by an adversarial probe: WebSocket handshakes described to forward-auth.
// - Caddy's forward_auth sends a handshake's check as a handshake itself (measured with Caddy 2.6:
//   GET /.bouncer/auth with Connection: Upgrade, Upgrade: websocket, Sec-WebSocket-Key and
//   X-Forwarded-Uri). The gateway judged that upgrade as one to its own endpoint: 400 `Route
//   "builtin/forward-auth" does not allow protocol upgrades`, on a `websocket: true` route too, so no
//   WebSocket ever passed Caddy.
// - nginx passes only Sec-WebSocket-Key on (no Upgrade): a handshake described there for a route
//   without `websocket: true`, or as a POST, was allowed (200), where the gateway's own listener
//   refuses it (400): a proxy that proxies upgrades then opened a tunnel the config never allowed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { HANDSHAKE_FIELDS } from '../helpers/websocket.ts'

let api: TestUpstream
let gw: TestGateway
let port: number

beforeAll(async () => {
  api = await startUpstream()
  gw = await startTestGateway({
    server: { trusted_proxies: ['127.0.0.1/32'], forward_auth_peers: ['127.0.0.1/32'] },
    upstreams: [{ name: 'api', url: api.url, headers: { 'X-Api-Key': 'k-ws' } }],
    routes: [
      { id: 'live', path: '/live/*', upstream: 'api', public: true, websocket: true },
      { id: 'plain', path: '/plain/*', upstream: 'api', public: true },
    ],
  })
  port = Number(new URL(gw.url).port)
})

afterAll(async () => {
  await gw?.close()
  await api?.close()
})

const KEY_ONLY = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
/** Caddy's check for a client's handshake: itself a handshake, the original in X-Forwarded-*. */
const caddy = (uri: string, method = 'GET') => `GET /.bouncer/auth HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-Method: ${method}\r\nX-Forwarded-Uri: ${uri}\r\nX-Forwarded-Host: api.example.com\r\n${HANDSHAKE_FIELDS}\r\n`
/** nginx's auth_request (HTTP/1.0, as nginx proxies by default): Sec-WebSocket-Key, no Upgrade. */
const nginx = (uri: string, method = 'GET') => `GET /.bouncer/auth HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Original-Method: ${method}\r\nX-Original-URI: ${uri}\r\n${KEY_ONLY}\r\n`

describe('a WebSocket handshake described to forward-auth', () => {
  it('is allowed on a websocket route, however the proxy asks', async () => {
    for (const [name, ask] of [['caddy', caddy(`/live/1`)], ['nginx', nginx('/live/2')]] as const) {
      const answer = await rawRequest(port, ask)
      expect(answer.status, `${name}: ${answer.body}`).toBe(200)
      expect(answer.headers['x-api-key'], name).toBe('k-ws')
    }
  })

  it('is refused (400) on a route without websocket: true, or as another method than GET, as on the gateway\'s own listener', async () => {
    const asks: Array<[string, string, string]> = [
      ['caddy, plain route', caddy('/plain/1'), 'Route "plain" does not allow protocol upgrades.'],
      ['nginx, plain route', nginx('/plain/2'), 'Route "plain" does not allow protocol upgrades.'],
      ['nginx, POST', nginx('/live/3', 'POST'), 'A WebSocket handshake is a GET; this upgrade came as POST.'],
    ]
    for (const [name, ask, detail] of asks) {
      const answer = await rawRequest(port, ask)
      expect(answer.status, name).toBe(400)
      expect(JSON.parse(answer.body), name).toMatchObject({ code: 'bad_request', detail })
      expect(answer.headers['x-api-key'], name).toBeUndefined()
    }
    const own = await rawRequest(port, `GET /plain/9 HTTP/1.1\r\nHost: x\r\n${HANDSHAKE_FIELDS}\r\n`)
    expect(JSON.parse(own.body)).toMatchObject({ code: 'bad_request', detail: 'Route "plain" does not allow protocol upgrades.' })
    expect(api.received).toEqual([])
  })
})
