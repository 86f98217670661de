// Found by the front-door probe: node:http emits 'upgrade' for a handshake pipelined behind a request
// still being answered (one packet: `GET /slow` then `GET /ws` with Upgrade), and the gateway gave
// the handshake its answer's ServerResponse on that socket at once: Node threw
// ERR_HTTP_SOCKET_ASSIGNED (the socket's response was the earlier request's), an uncaught exception
// that drained and ended the whole gateway, on any route, before any credential was asked for. A
// pipelined handshake now waits for the answers ahead of it, as pipelined requests do (README: served
// one at a time, in order), and is then handled as any other.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TestGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw.ts'
import { echoWebSocket, HANDSHAKE_FIELDS, startWebSocketGateway } from '../helpers/websocket.ts'

let upstream: Server
let gateway: TestGateway
let port: number
const upstreamUrls: string[] = []

beforeAll(async () => {
  upstream = createServer((req, res) => {
    upstreamUrls.push(req.url ?? '')
    // Slow enough that the pipelined handshake is parsed while this answer is still to come.
    setTimeout(() => res.end(`answer for ${req.url}`), 150)
  })
  upstream.on('upgrade', (req, socket: Socket) => {
    upstreamUrls.push(req.url ?? '')
    echoWebSocket(req, socket)
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  ;({ gateway, port } = await startWebSocketGateway(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`))
})

afterAll(async () => {
  await gateway?.close()
  upstream?.closeAllConnections()
  upstream?.close()
})

/** Sends `data` in one write and collects what comes back until `done(text)` says so, or the connection closes. */
function exchange(data: string, done: (text: string) => boolean, then?: (socket: Socket) => void): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(data))
    let text = ''
    let thenSent = false
    const finish = () => {
      socket.destroy()
      resolve(text)
    }
    const timer = setTimeout(finish, 5_000)
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      if (then && !thenSent && text.includes('101 Switching Protocols') && text.endsWith('\r\n\r\n')) {
        thenSent = true
        then(socket)
      }
      if (done(text)) {
        clearTimeout(timer)
        finish()
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(text)
    })
  })
}

/** A masked client text frame (RFC 6455 §5.3). */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text)
  const mask = Buffer.from([1, 2, 3, 4])
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] as number)))])
}

describe('a WebSocket handshake pipelined behind a request still being answered', () => {
  it('waits for that answer, then opens its tunnel; the gateway serves on', async () => {
    const text = await exchange(`GET /slow HTTP/1.1\r\nHost: gw\r\n\r\nGET /ws HTTP/1.1\r\nHost: gw\r\n${HANDSHAKE_FIELDS}\r\n`, (t) => t.includes(textFrame('ping').toString('latin1')), (socket) => socket.write(textFrame('ping')))
    const answer = text.indexOf('answer for /slow')
    const switched = text.indexOf('HTTP/1.1 101 Switching Protocols')
    expect(text.startsWith('HTTP/1.1 200 OK')).toBe(true)
    expect(answer).toBeGreaterThan(0)
    expect(switched).toBeGreaterThan(answer)
    // The upstream echoes the masked frame's bytes: the tunnel is open.
    expect(text.slice(switched)).toContain(textFrame('ping').toString('latin1'))
    expect((await rawRequest(port, 'GET /after HTTP/1.1\r\nHost: gw\r\n\r\n')).status).toBe(200)
  })

  it('on a route without websocket: the earlier answer, then 400, in order; the gateway serves on', async () => {
    const text = await exchange(`GET /slow2 HTTP/1.1\r\nHost: gw\r\n\r\nGET /plain HTTP/1.1\r\nHost: gw\r\n${HANDSHAKE_FIELDS}\r\n`, (t) => t.includes('"code":"bad_request"') && t.trimEnd().endsWith('}'))
    const answer = text.indexOf('answer for /slow2')
    const refused = text.indexOf('HTTP/1.1 400 ')
    expect(answer).toBeGreaterThan(0)
    expect(refused).toBeGreaterThan(answer)
    expect(upstreamUrls).not.toContain('/plain')
    expect((await rawRequest(port, 'GET /after2 HTTP/1.1\r\nHost: gw\r\n\r\n')).status).toBe(200)
  })
})
