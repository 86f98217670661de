// The demo's data API: fresh numbers on every call, like the internal APIs Bouncer fronts.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface DataApi {
  url: string
  server: Server
  close(): Promise<void>
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

export type RequestCheck = (req: IncomingMessage) => Promise<string | undefined> | string | undefined

/** `check` may refuse a request (returns a reason): later the demo checks the gateway's credential. */
export async function startDataApi(options: { port?: number; check?: RequestCheck } = {}): Promise<DataApi> {
  const server = createServer(async (req, res) => {
    const refusal = await options.check?.(req)
    if (refusal) return send(res, 401, 'application/json', JSON.stringify({ error: refusal }))
    const url = new URL(req.url ?? '/', 'http://data-api')
    const daily = /^\/v1\/reports\/daily\/([a-z]+)$/.exec(url.pathname)
    if (daily && REGIONS.includes(daily[1] as string)) return send(res, 200, 'application/json', JSON.stringify(dailyReport(daily[1] as string)))
    if (url.pathname === '/v1/customers') return send(res, 200, 'application/json', JSON.stringify(customers()))
    if (url.pathname === '/v1/export.csv') return send(res, 200, 'text/csv', csvExport())
    if (url.pathname === '/healthz') return send(res, 200, 'application/json', '{"status":"ok"}')
    send(res, 404, 'application/json', JSON.stringify({ error: 'not found' }))
  })
  server.listen(options.port ?? 0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close').catch(() => {})
    },
  }
}
