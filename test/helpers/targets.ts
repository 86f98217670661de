// Real node:http targets for upstream-resilience tests: each can answer, hang (accept and never
// answer), answer 503, die (its listener closed, its connections cut) and come back on the same
// port. Every request is counted by its X-Test-Id, so a test can tell which target received what,
// and how many times.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export type TargetMode = 'ok' | 'hang' | '503'

export interface TestTarget {
  readonly name: string
  readonly url: string
  readonly port: number
  mode: TargetMode
  /** Milliseconds an `ok` or `503` answer waits (so requests are in flight when the target dies). */
  delayMs: number
  /** X-Test-Id → times received (health checks not counted). */
  readonly received: Map<string, number>
  /** Requests received (health checks not counted). */
  readonly count: () => number
  readonly healthChecks: () => number
  die(): Promise<void>
  revive(): Promise<void>
  close(): Promise<void>
}

export async function startTarget(name: string, options: { port?: number; mode?: TargetMode } = {}): Promise<TestTarget> {
  const received = new Map<string, number>()
  const sockets = new Set<Socket>()
  let requests = 0
  let checks = 0
  let server: Server
  const target: TestTarget = {
    name,
    url: '',
    port: 0,
    mode: options.mode ?? 'ok',
    delayMs: 0,
    received,
    count: () => requests,
    healthChecks: () => checks,
    async die() {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close').catch(() => {})
    },
    async revive() {
      await listen(target.port)
    },
    async close() {
      if (server.listening) await target.die()
    },
  }
  const listen = async (port: number) => {
    server = createServer((req, res) => {
      const health = req.url === '/healthz'
      if (health) checks++
      else {
        requests++
        const id = String(req.headers['x-test-id'] ?? '')
        received.set(id, (received.get(id) ?? 0) + 1)
      }
      let bytes = 0
      req.on('data', (chunk: Buffer) => (bytes += chunk.length))
      req.on('end', () => {
        if (target.mode === 'hang') return
        if (target.mode === '503') {
          const refuse = () => {
            res.writeHead(503, { 'content-type': 'text/plain' })
            res.end('unavailable')
          }
          if (target.delayMs > 0 && !health) setTimeout(refuse, target.delayMs)
          else refuse()
          return
        }
        const body = JSON.stringify({ target: name, id: req.headers['x-test-id'] ?? null, sub: req.headers['x-sub'] ?? null, bytes })
        const answer = () => {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
          res.end(body)
        }
        if (target.delayMs > 0 && !health) setTimeout(answer, target.delayMs)
        else answer()
      })
    })
    server.on('connection', (socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address() as AddressInfo
    Object.assign(target, { port: address.port, url: `http://127.0.0.1:${address.port}` })
  }
  await listen(options.port ?? 0)
  return target
}
