// The demo's data API: fresh numbers on every call, like the internal APIs Bouncer fronts. It
// trusts only the gateway: a request must carry the credential the gateway injects from its
// secrets store, and an X-Bouncer-Assertion that verifies against the gateway's published keys
// (as examples/assertion/verify-upstream.ts shows an upstream doing it). The JSON answers say who
// the gateway vouched for.
import { once } from 'node:events'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { timingSafeEqual } from 'node:crypto'
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose'
import { nodeHttp } from '../http/index.ts'

const { createServer } = nodeHttp // not imported: http/node-http.ts says why

interface Caller extends JWTPayload {
  sub: string
  roles: string[]
  idp: string
}

export interface DataApi {
  url: string
  server: Server
  /** From now on, X-Bouncer-Assertion is verified against this gateway's keys. */
  trustGateway(gatewayUrl: string, upstreamName: string): void
  close(): Promise<void>
}

export interface DataApiOptions {
  port?: number
  /** The only Authorization value accepted: what the gateway injects. */
  credential: string
}

const REGIONS = ['eu', 'us', 'apac']

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(body)
}

function dailyReport(region: string): object {
  const now = new Date()
  return {
    region,
    generated_at: now.toISOString(),
    hours: Array.from({ length: now.getUTCHours() + 1 }, (_, hour) => ({
      hour,
      orders: 800 + Math.floor(Math.random() * 400),
      revenue: Math.round((20_000 + Math.random() * 10_000) * 100) / 100,
    })),
  }
}

function customers(): object[] {
  return [
    { id: 'c-1001', name: 'Ada Lovelace', email: 'ada@example.com', region: 'eu', lifetime_value: 18_200.5 },
    { id: 'c-1002', name: 'Grace Hopper', email: 'grace@example.com', region: 'us', lifetime_value: 25_410 },
  ]
}

function csvExport(): string {
  const rows = REGIONS.map((region) => `${region},${900 + Math.floor(Math.random() * 300)},${new Date().toISOString()}`)
  return `region,orders_today,as_of\n${rows.join('\n')}\n`
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

export async function startDataApi(options: DataApiOptions): Promise<DataApi> {
  let verify: ((assertion: string | undefined) => Promise<Caller>) | null = null
  const server = createServer((req, res) => {
    // Nothing waits on the handler's promise: a failure in it, unanswered, was an unhandled
    // rejection that ended the whole demo (gateway, provider and all).
    answer(req, res).catch((err: unknown) => {
      console.error(`demo data API: ${req.method} ${req.url}: ${(err as Error).message}`)
      if (res.headersSent) res.destroy()
      else send(res, 500, 'application/json', '{"error":"internal error"}')
    })
  })
  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // A target Node's parser takes but URL does not (`http://a:99999/`): 400, as it was a crash.
    const url = URL.parse(req.url ?? '/', 'http://data-api')
    if (url === null) return send(res, 400, 'application/json', JSON.stringify({ error: 'the request target is not a URL' }))
    if (url.pathname === '/healthz') return send(res, 200, 'application/json', '{"status":"ok"}')
    if (!sameSecret(req.headers.authorization ?? '', `Bearer ${options.credential}`)) {
      return send(res, 401, 'application/json', JSON.stringify({ error: 'this API only answers the gateway (wrong or missing credential)' }))
    }
    let caller: Caller
    try {
      if (!verify) throw new Error('not ready')
      caller = await verify(req.headers['x-bouncer-assertion'] as string | undefined)
    } catch (err) {
      return send(res, 401, 'application/json', JSON.stringify({ error: `no valid X-Bouncer-Assertion: ${(err as Error).message}` }))
    }
    const requestedBy = { subject: caller.sub, roles: caller.roles, identity_provider: caller.idp }
    const daily = /^\/v1\/reports\/daily\/([a-z]+)$/.exec(url.pathname)
    if (daily && REGIONS.includes(daily[1] as string)) {
      return send(res, 200, 'application/json', JSON.stringify({ ...dailyReport(daily[1] as string), requested_by: requestedBy }))
    }
    if (url.pathname === '/v1/customers') return send(res, 200, 'application/json', JSON.stringify({ customers: customers(), requested_by: requestedBy }))
    if (url.pathname === '/v1/export.csv') return send(res, 200, 'text/csv', csvExport())
    send(res, 404, 'application/json', JSON.stringify({ error: 'not found' }))
  }
  server.listen(options.port ?? 0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    trustGateway(gatewayUrl, upstreamName) {
      const keys = createRemoteJWKSet(new URL('/.well-known/jwks.json', gatewayUrl))
      verify = async (assertion) => {
        if (!assertion) throw new Error('the request did not come through the gateway')
        const { payload } = await jwtVerify(assertion, keys, { issuer: 'bouncer', audience: upstreamName, algorithms: ['ES256'], maxTokenAge: '5m' })
        return payload as Caller
      }
    },
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close').catch(() => {})
    },
  }
}
