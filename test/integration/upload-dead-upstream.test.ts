// Found by a probe (helper): an upload over 64 KiB to an upstream that cannot be reached was
// answered 502, and request_timeout later the whole gateway exited: the body's deadline destroyed
// the counting stream with an error no one listened for any more (the attempt had been given up at
// the connect), an uncaught exception. With workers, every worker that took such a request died.
import { connect } from 'node:net'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { closedPort } from '../helpers/faults.ts'

const REQUEST_TIMEOUT_MS = 1_000
let gateway: ServeProcess & { dir: string }

beforeAll(async () => {
  const dead = await closedPort()
  gateway = await serveConfig({
    server: { listen: '127.0.0.1:0', request_timeout: `${REQUEST_TIMEOUT_MS}ms` },
    audit: { sinks: [] },
    upstreams: [{ name: 'dead', url: `http://127.0.0.1:${dead}` }],
    routes: [{ id: 'dead', path: '/d/*', upstream: 'dead', public: true }],
  })
}, 30_000)

afterAll(() => gateway?.stop())

/** Sends the head and part of a body, and reads the answer's status line. */
function upload(headers: string, body: Buffer): Promise<string> {
  const { port, hostname } = new URL(gateway.url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    let answer = ''
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1')
      if (answer.includes('\r\n')) {
        resolve(answer.slice(0, answer.indexOf('\r\n')))
        socket.destroy()
      }
    })
    socket.on('error', reject)
    socket.write(`POST /d/x HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`)
    socket.write(body)
  })
}

it('an upload still arriving when its upstream cannot be reached is 502, and the gateway stays up past request_timeout', async () => {
  // More than the 64 KiB window, not all of it: the rest never comes, so its deadline is still set.
  const part = Buffer.alloc(200_000, 0x61)
  expect(await upload('Content-Length: 3000000\r\n', part)).toBe('HTTP/1.1 502 Bad Gateway')
  expect(await upload('Transfer-Encoding: chunked\r\n', Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part]))).toBe('HTTP/1.1 502 Bad Gateway')
  // The deadline (request_timeout from the head) passes: before the fix the process exited 1 here.
  const outcome = await Promise.race([gateway.exited.then((code) => `exited ${code}`), new Promise<string>((resolve) => setTimeout(() => resolve('up'), REQUEST_TIMEOUT_MS * 3).unref())])
  expect(outcome, gateway.stderr()).toBe('up')
  const after = await request(`${gateway.url}/d/y`)
  await after.body.dump()
  expect(after.statusCode).toBe(502)
}, 30_000)
