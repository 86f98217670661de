// The MCP conformance suite (@modelcontextprotocol/conformance, `server` scenarios) run against a
// URL, its results read back per scenario as check id → status. Its client sends no credentials,
// so a gateway is reached through `withBearer`: a local hop that adds the agent's token, as an MCP
// client configured with a static Authorization header would.
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { readdir, readFile } from 'node:fs/promises'
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const CONFORMANCE = fileURLToPath(new URL('../../node_modules/@modelcontextprotocol/conformance/dist/index.js', import.meta.url))

/** scenario → (check id → status), checks of the same id listed in order. */
export type ConformanceResults = Record<string, Record<string, string[]>>

export async function runConformance(url: string, outDir: string, options: { scenario?: string } = {}): Promise<ConformanceResults> {
  const args = [CONFORMANCE, 'server', '--url', url, '-o', outDir, ...(options.scenario ? ['--scenario', options.scenario] : [])]
  // A failed scenario makes the run exit non-zero: the results are still written.
  await promisify(execFile)(process.execPath, args, { timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }).catch((err: { stdout?: string; code?: number }) => {
    if (typeof err.code !== 'number') throw err
  })
  const results: ConformanceResults = {}
  for (const entry of await readdir(outDir)) {
    const scenario = entry.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '')
    const checks = JSON.parse(await readFile(join(outDir, entry, 'checks.json'), 'utf8')) as { id: string; status: string }[]
    const byId: Record<string, string[]> = {}
    for (const check of checks) (byId[check.id] ??= []).push(check.status)
    results[scenario] = byId
  }
  return results
}

export interface BearerHop {
  url: string
  close(): Promise<void>
}

/** Forwards every request to `target` (same path) with `Authorization: Bearer <token>` added; streams both ways. */
export async function withBearer(target: string, token: string): Promise<BearerHop> {
  const to = new URL(target)
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    const outgoing = httpRequest({
      host: to.hostname, port: to.port, method: req.method, path: req.url,
      headers: { ...req.headers, authorization: `Bearer ${token}` },
    }, (upstream) => {
      res.writeHead(upstream.statusCode ?? 502, upstream.headers)
      upstream.pipe(res)
    })
    outgoing.on('error', () => res.destroy())
    req.pipe(outgoing)
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}${to.pathname}`,
    async close() {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close').catch(() => {})
    },
  }
}
