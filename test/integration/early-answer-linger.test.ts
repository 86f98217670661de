// An answer given before the request's body was read (413 as the body crossed max_body_bytes, 408
// at request_timeout) went out with `Connection: close`, and node:http closed the socket as soon as
// it was written. A client still sending its body then met a closed socket: the gateway's kernel
// answered its next bytes with a reset, and a reset discards what the client had received and not
// yet read, the answer with it. On a loaded CI 363 of 500 body tricklers saw a reset, no 408. The
// gateway now half-closes and keeps reading (nginx's lingering close), then closes once the client
// does, or after the linger.
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await startTestGateway({
    server: { max_body_bytes: 1024 },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'upload', path: '/upload', upstream: 'api', public: true }],
  })
})

afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

it('a client still sending its body when it is refused reads the refusal, however late it reads', async () => {
  const port = Number(new URL(gateway.url).port)
  const socket: Socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  const received: Buffer[] = []
  let error: string | null = null
  let closed = false
  socket.on('error', (err) => (error = (err as NodeJS.ErrnoException).code ?? err.message))
  socket.on('close', () => (closed = true))
  socket.pause() // a client busy sending: it reads the answer only later
  socket.write('POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n')
  socket.write(Buffer.alloc(4_096, 'a')) // past max_body_bytes: the gateway answers 413 now
  // Go on sending, as an upload does, well after the answer was written and the connection ended.
  for (let i = 0; i < 10 && !closed; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    socket.write(Buffer.alloc(4_096, 'b'))
  }
  socket.on('data', (chunk: Buffer) => received.push(chunk))
  socket.resume()
  await waitFor(() => closed || Buffer.concat(received).includes('\r\n\r\n'), 'the answer, or the connection closed')
  const answer = Buffer.concat(received).toString('latin1')
  expect({ status: /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? null, error }).toMatchObject({ status: '413' })
  socket.destroy()
})
