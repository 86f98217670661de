// The admin listener took Node's defaults: a request head could trickle for 60 s (checked every 30 s),
// a body for 5 minutes, and connections were not bounded at all. Anyone who reached the admin port
// (it faces the same network as /metrics scrapers and kubelets) could hold thousands of idle or
// slowloris connections: file descriptors of the one process that also holds the gateway's client and
// upstream connections (found by the admin probe). It now takes server.headers_timeout,
// request_timeout and keep_alive_timeout as the gateway listener does, and admits ADMIN_MAX_CONNECTIONS.
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { ADMIN_MAX_CONNECTIONS } from '../../src/admin/server.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveConfig } from '../helpers/cli.ts'

let gw: TestGateway
let port: number
const sockets = new Set<Socket>()

beforeAll(async () => {
  gw = await startTestGateway({ server: { headers_timeout: '300ms', request_timeout: '600ms' }, routes: [] })
  port = Number(new URL(gw.adminUrl).port)
})

afterAll(async () => {
  for (const socket of sockets) socket.destroy()
  await gw?.close()
})

async function open(): Promise<Socket> {
  const socket = connect(port, '127.0.0.1')
  sockets.add(socket)
  socket.on('error', () => {})
  await once(socket, 'connect')
  return socket
}

/** What the server said before it closed the connection, and when (ms after `since`); fails past 5 s. */
async function closedBy(socket: Socket, since: number): Promise<{ said: string; afterMs: number }> {
  let said = ''
  socket.on('data', (chunk: Buffer) => (said += chunk.toString('latin1')))
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the admin listener still holds the connection after 5 s')), 5_000).unref())
  await Promise.race([once(socket, 'close'), timer])
  return { said, afterMs: performance.now() - since }
}

it('a request head that trickles is answered 408 at headers_timeout and closed', async () => {
  const socket = await open()
  const since = performance.now()
  socket.write('GET /healthz HTTP/1.1\r\nHost: admin\r\nX-Slow: ')
  const { said, afterMs } = await closedBy(socket, since)
  expect(said).toMatch(/^HTTP\/1\.1 408 /)
  expect(afterMs).toBeLessThan(3_000)
})

it('a connection that sends nothing is closed too', async () => {
  const socket = await open()
  const { afterMs } = await closedBy(socket, performance.now())
  expect(afterMs).toBeLessThan(3_000)
})

it('a request body that trickles is cut at request_timeout', async () => {
  const socket = await open()
  const since = performance.now()
  socket.write('POST /api/reload HTTP/1.1\r\nHost: admin\r\nContent-Length: 100\r\n\r\n{')
  const { afterMs } = await closedBy(socket, since)
  expect(afterMs).toBeLessThan(3_000)
})

it(`connections past ${ADMIN_MAX_CONNECTIONS} are closed at once, and the listener answers again when they go`, async () => {
  const held = await Promise.all(Array.from({ length: ADMIN_MAX_CONNECTIONS }, () => open()))
  // Each holds a request head open, so none is idle and none is done.
  for (const socket of held) socket.write('GET /healthz HTTP/1.1\r\n')
  const extra = await open()
  const { said } = await closedBy(extra, performance.now())
  expect(said).toBe('')
  for (const socket of held) socket.destroy()
  // The listener counts them gone when it has read their FINs: a healthz refused before then is tried again.
  await waitFor(async () => {
    const res = await request(`${gw.adminUrl}/healthz`, { reset: true }).catch(() => null)
    await res?.body.dump()
    return res?.statusCode === 200
  }, 'the admin listener to answer again')
})

it('with server.workers, the primary\'s admin listener is bounded alike', async () => {
  const serve = await serveConfig({ server: { workers: 2, headers_timeout: '300ms', request_timeout: '600ms' }, audit: { sinks: [] }, routes: [] }, { startTimeout: 60_000 })
  try {
    const socket = connect(Number(new URL(serve.adminUrl).port), '127.0.0.1')
    sockets.add(socket)
    socket.on('error', () => {})
    await once(socket, 'connect')
    const since = performance.now()
    socket.write('GET /healthz HTTP/1.1\r\nHost: admin\r\nX-Slow: ')
    const { said, afterMs } = await closedBy(socket, since)
    expect(said).toMatch(/^HTTP\/1\.1 408 /)
    expect(afterMs).toBeLessThan(3_000)
  } finally {
    await serve.stop()
  }
}, 60_000)
