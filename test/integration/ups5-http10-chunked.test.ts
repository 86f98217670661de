// RFC 9112 §6.1: a server MUST NOT send Transfer-Encoding in an HTTP/1.0 answer, and a client that
// gets one MUST treat its framing as faulty and close the connection after processing it. undici
// read such an answer (`Connection: keep-alive` too) as chunked and sent the next request on the same
// connection: whatever the upstream meant to follow the answer was read as the next one's. The
// gateway relays the answer as it was read, and closes that connection after it, as nginx does.
import type { Socket } from 'node:net'
import { request } from 'undici'
import { describe, expect, it } from 'vitest'
import { publicCatchAll, startTestGateway } from '../helpers/gateway.ts'
import { closeAfterEach } from '../helpers/lifecycle.ts'
import { startRawUpstream } from '../helpers/raw-upstream.ts'

const closeLater = closeAfterEach()

const CHUNKED = 'Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n0\r\n\r\n'

/** A raw upstream giving every request `statusLine` and `rest` (a `hello`, kept alive); the connections the requests came on. */
async function chunkedUpstream(statusLine: string, rest = CHUNKED) {
  const connections: Socket[] = []
  const raw = await startRawUpstream((_head, socket) => {
    if (!connections.includes(socket)) connections.push(socket)
    socket.write(`${statusLine}\r\n${rest}`)
  })
  closeLater(() => raw.close())
  const gw = await startTestGateway(publicCatchAll(raw.url))
  closeLater(() => gw.close())
  return { gw, raw, connections }
}

async function twoInARow(url: string): Promise<Array<{ status: number; body: string }>> {
  const seen = []
  for (const path of ['/first', '/second']) {
    const res = await request(`${url}${path}`)
    seen.push({ status: res.statusCode, body: await res.body.text() })
  }
  return seen
}

describe('an HTTP/1.0 answer with Transfer-Encoding: chunked and Connection: keep-alive', () => {
  it('is relayed as read, and its connection is closed: the next request comes on a new one', async () => {
    const { gw, raw, connections } = await chunkedUpstream('HTTP/1.0 200 OK')

    expect(await twoInARow(gw.url)).toEqual([{ status: 200, body: 'hello' }, { status: 200, body: 'hello' }])
    expect(raw.heads.map((head) => head.split(' ')[1])).toEqual(['/first', '/second'])
    expect(connections).toHaveLength(2)
  })

  it('is closed after too when its head comes in pieces, Transfer-Encoding after the first', async () => {
    const connections: Socket[] = []
    const raw = await startRawUpstream((_head, socket) => {
      if (!connections.includes(socket)) connections.push(socket)
      socket.write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n')
      // A separate read at the gateway, as a slow link makes it.
      setTimeout(() => socket.write(CHUNKED), 15)
    })
    closeLater(() => raw.close())
    const gw = await startTestGateway(publicCatchAll(raw.url))
    closeLater(() => gw.close())

    expect(await twoInARow(gw.url)).toEqual([{ status: 200, body: 'hello' }, { status: 200, body: 'hello' }])
    expect(connections).toHaveLength(2)
  })

  it('the same answer as HTTP/1.1 keeps its connection', async () => {
    const { gw, connections } = await chunkedUpstream('HTTP/1.1 200 OK')

    expect(await twoInARow(gw.url)).toEqual([{ status: 200, body: 'hello' }, { status: 200, body: 'hello' }])
    expect(connections).toHaveLength(1)
  })

  it('an HTTP/1.0 keep-alive answer framed by Content-Length keeps its connection', async () => {
    const { gw, connections } = await chunkedUpstream('HTTP/1.0 200 OK', 'Content-Length: 5\r\nConnection: keep-alive\r\n\r\nhello')

    expect(await twoInARow(gw.url)).toEqual([{ status: 200, body: 'hello' }, { status: 200, body: 'hello' }])
    expect(connections).toHaveLength(1)
  })
})
