// The primary reaches a worker's admin socket with a fresh connection for each request. On a kept-
// alive one, a request written just as the worker closed the idle connection (its drain's end, its
// keep-alive timeout) was reset: a 500 for the operator's admin request passed through, a worker
// missing from a /metrics scrape. The worker here resets any connection asked a second time, as a
// worker that closed it at that moment does.
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, expect, it } from 'vitest'
import { ask, pipeTo } from '../../../src/instance/workers/worker-admin.ts'

const servers: Server[] = []
let dir: string | undefined

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    server.close()
  }
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** A worker's admin socket that answers the first request on a connection and resets the connection at the second. */
async function closingWorker(): Promise<{ id: string; socket: string; connections: () => number }> {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-worker-admin-'))
  const socket = join(dir, 'w1.sock')
  const served = new WeakSet<object>()
  let connections = 0
  const server = createServer((req, res) => {
    if (served.has(req.socket)) return void req.socket.destroy()
    served.add(req.socket)
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url }))
  })
  server.on('connection', () => connections++)
  servers.push(server)
  server.listen(socket)
  await once(server, 'listening')
  return { id: 'w1', socket, connections: () => connections }
}

it('asks a worker twice in a row, each on its own connection', async () => {
  const worker = await closingWorker()
  for (const path of ['/metrics', '/readyz']) {
    const answer = await ask(worker, 'GET', path)
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.body)).toEqual({ path })
  }
  expect(worker.connections()).toBe(2)
})

it('passes an operator\'s admin requests through, each on its own connection to the worker', async () => {
  const worker = await closingWorker()
  const front = createServer((req, res) => void pipeTo(worker, req, res).catch(() => res.destroy()))
  servers.push(front)
  front.listen(0, '127.0.0.1')
  await once(front, 'listening')
  const url = `http://127.0.0.1:${(front.address() as AddressInfo).port}`
  for (const path of ['/api/routes', '/api/roles']) {
    const res = await request(`${url}${path}`)
    expect(res.statusCode).toBe(200)
    expect(await res.body.json()).toEqual({ path })
  }
  expect(worker.connections()).toBe(2)
})
