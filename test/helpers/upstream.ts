// A real node:http upstream on 127.0.0.1:0. By default it echoes what it received as JSON, so a
// test can assert exactly which path and headers crossed the gateway.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface Received {
  method: string
  url: string
  headers: IncomingMessage['headers']
  rawHeaders: string[]
  trailers: IncomingMessage['trailers']
  bodyBytes: number
  body: string
  aborted?: boolean
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, received: Received) => void | Promise<void>

export interface TestUpstream {
  url: string
  port: number
  received: Received[]
  /** Connections open to it now (a client's pool closing shows as this dropping). */
  connections(): number
  /** The URLs of requests whose head has arrived (their body may still be coming): `received` has them once read. */
  started: string[]
  close(): Promise<void>
}

/** Echoes the request (method, url, headers, body size) as JSON. */
export const echo: UpstreamHandler = (_req, res, received) => {
  const body = JSON.stringify({ ...received, body: received.body.slice(0, 1024) })
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

export async function startUpstream(handler: UpstreamHandler = echo, options: { readBody?: boolean } = {}): Promise<TestUpstream> {
  const received: Received[] = []
  const started: string[] = []
  const sockets = new Set<Socket>()
  const server = createServer(async (req, res) => {
    started.push(req.url ?? '')
    const record: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, trailers: {}, bodyBytes: 0, body: '' }
    if (options.readBody !== false) {
      const chunks: Buffer[] = []
      try {
        for await (const chunk of req) {
          record.bodyBytes += (chunk as Buffer).length
          if (record.body.length < 4096) chunks.push(chunk as Buffer)
        }
      } catch {
        record.aborted = true // the gateway cut the request off (e.g. its client went away)
      }
      record.body = Buffer.concat(chunks).toString('utf8')
      record.trailers = req.trailers
    }
    received.push(record)
    try {
      await handler(req, res, record)
    } catch (err) {
      res.destroy(err as Error)
    }
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    connections: () => sockets.size,
    started,
    async close() {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close').catch(() => {})
    },
  }
}

/**
 * A 200 of `bytes` bytes of 'a', written as the reader takes them (backpressure), stopped when the
 * reader goes: more than the socket buffers between a gateway and its client hold, so the answer's
 * end waits on the client (a client that leaves, one that stops reading).
 */
export async function writeLargeAnswer(res: ServerResponse, bytes: number, head = false): Promise<void> {
  res.writeHead(200, { 'content-length': String(bytes) })
  if (head) return void res.end()
  const chunk = Buffer.alloc(64 * 1024, 0x61)
  for (let sent = 0; sent < bytes && !res.destroyed; sent += chunk.length) {
    if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')])
  }
  res.end()
}
