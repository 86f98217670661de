// Found by the front-door probe: node:http hands the socket of a CONNECT (and of an Upgrade) to the
// server's listener with no 'error' listener left on it. The gateway answered an HTTP/1.1 CONNECT
// with its 400 on that socket and lingered for the client to close: a client that reset the
// connection instead (a TCP RST, as any client can send at will) made an ECONNRESET nobody
// listened for, an uncaught exception that drained and ended the whole gateway. So did a reset
// while a pipelined WebSocket handshake waited for the answers ahead of it. A CONNECT pipelined
// behind a request had its 400 written at once, into the middle of the earlier answer.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { deferred } from '../helpers/wait.ts'
import { echoWebSocket, HANDSHAKE_FIELDS, startWebSocketGateway } from '../helpers/websocket.ts'

let upstream: Server
let gateway: TestGateway
let port: number
/** The upstream's answer to /slow waits for this. */
let slowArrived = deferred()
let releaseSlow = deferred()

beforeAll(async () => {
  upstream = createServer((req, res) => {
    if (req.url !== '/slow') return void res.end('ok')
    slowArrived.resolve()
    void releaseSlow.promise.then(() => res.end('slow'))
  })
  upstream.on('upgrade', (req, socket: Socket) => echoWebSocket(req, socket))
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  ;({ gateway, port } = await startWebSocketGateway(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`))
})

afterAll(async () => {
  await gateway?.close()
  upstream?.closeAllConnections()
  upstream?.close()
})

/** Whether the gateway's side of a connection has closed, seen from a fresh request being served. */
async function servesOn(): Promise<number> {
  return (await rawRequest(port, 'GET /after HTTP/1.1\r\nHost: gw\r\n\r\n', { timeout: 3_000 })).status
}

describe('a client that resets its connection after the listener handed the socket over', () => {
  it('a CONNECT answered 400, then a TCP reset: the gateway serves on', async () => {
    const socket = connect(port, '127.0.0.1', () => socket.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'))
    socket.on('error', () => {})
    const [answer] = (await once(socket, 'data')) as [Buffer]
    expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 400 /)
    socket.resetAndDestroy()
    await once(socket, 'close')
    // The RST reaches the gateway's lingering socket; an unheard error there ended the process.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(await servesOn()).toBe(200)
  })

  it('a WebSocket handshake pipelined behind a request, then a TCP reset while it waits: the gateway serves on', async () => {
    slowArrived = deferred()
    releaseSlow = deferred()
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET /slow HTTP/1.1\r\nHost: gw\r\n\r\nGET /ws HTTP/1.1\r\nHost: gw\r\n${HANDSHAKE_FIELDS}\r\n`))
    socket.on('error', () => {})
    await slowArrived.promise // both parsed: the handshake waits for /slow's answer
    socket.resetAndDestroy()
    await once(socket, 'close')
    await new Promise((resolve) => setTimeout(resolve, 200))
    releaseSlow.resolve()
    expect(await servesOn()).toBe(200)
  })

  it('a CONNECT pipelined behind a request is answered after it, in order', async () => {
    slowArrived = deferred()
    releaseSlow = deferred()
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /slow HTTP/1.1\r\nHost: gw\r\n\r\nCONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'))
    socket.on('error', () => {})
    let text = ''
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
    await slowArrived.promise
    setTimeout(() => releaseSlow.resolve(), 100)
    await once(socket, 'close')
    expect(text.startsWith('HTTP/1.1 200 OK')).toBe(true)
    expect(text.indexOf('HTTP/1.1 400 ')).toBeGreaterThan(text.indexOf('slow'))
  })
})
