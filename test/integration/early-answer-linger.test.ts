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

/** A raw connection to the gateway, what it received, and whether (and why) it ended. */
async function open() {
  const port = Number(new URL(gateway.url).port)
  const socket: Socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  const seen = { received: [] as Buffer[], error: null as string | null, closed: false }
  socket.on('error', (err) => (seen.error = (err as NodeJS.ErrnoException).code ?? err.message))
  socket.on('close', () => (seen.closed = true))
  const statusOf = () => /^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(seen.received).toString('latin1'))?.[1] ?? null
  return { socket, seen, statusOf }
}

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

// Refused in the middle of its body (chunked: no length to refuse from the head), the request had
// been read in part: node:http did not drop the rest, and once 64 KiB of it waited, stopped reading
// the connection. A client that sends its whole body before it reads (as simple clients do) then
// waited on a full socket until the linger's end, and the reset discarded the answer after all.
it('refused in the middle of a chunked body, a client that sends 8 MB more before it reads still reads the refusal', async () => {
  const { socket, seen, statusOf } = await open()
  socket.pause()
  socket.write('POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n')
  const chunk = (bytes: number) => `${bytes.toString(16)}\r\n${'c'.repeat(bytes)}\r\n`
  socket.write(chunk(4_096)) // past max_body_bytes: the gateway answers 413 in the middle of the body
  // The rest of the body, each write waited for (more than the sockets' buffers hold).
  const started = performance.now()
  for (let sent = 0; sent < 8 * 1_048_576 && !seen.closed && performance.now() - started < 20_000; sent += 65_536) {
    if (!socket.write(chunk(65_536))) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve))
  }
  socket.on('data', (data: Buffer) => seen.received.push(data))
  socket.resume()
  await waitFor(() => seen.closed || Buffer.concat(seen.received).includes('\r\n\r\n'), 'the answer, or the connection closed')
  expect({ status: statusOf(), error: seen.error }).toMatchObject({ status: '413', error: null })
  socket.destroy()
}, 30_000)

// The connection a refusal ended lingers: a request pipelined behind the refused body is not served
// (RFC 9112 §9.6), nor sent to the upstream.
it('a request pipelined behind a refused body is not served while the connection lingers', async () => {
  const before = upstream.started.length
  const { socket, seen, statusOf } = await open()
  socket.on('data', (data: Buffer) => seen.received.push(data))
  const body = 'b'.repeat(2_000) // past max_body_bytes (1,024): refused from its head
  socket.write(`POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /upload?pipelined HTTP/1.1\r\nHost: gw\r\n\r\n`)
  await waitFor(() => seen.closed || Buffer.concat(seen.received).includes('\r\n\r\n'), 'the answer')
  expect(statusOf()).toBe('413')
  // Then a plain request on another connection: answered after anything the first could have sent.
  const res = await fetch(`${gateway.url}/upload?after`)
  await res.arrayBuffer()
  expect(upstream.started.slice(before)).toEqual(['/upload?after'])
  expect(Buffer.concat(seen.received).toString('latin1').match(/HTTP\/1\.1 /g)).toHaveLength(1)
  socket.destroy()
})
