// Found by an adversarial probe (front door, round 2): README promises that past 16 pipelined
// requests parsed and waiting, a connection is not read until they drain. node:http parses a whole
// read at once, though: one 64 KiB write of minimal GETs was 2,520 requests parsed and held, each
// waiting its turn. Measured: 200 connections of one such write each (12.8 MB sent) took the heap
// +794 MB; at the default max_connections (10,000) a few hundred kill the process.
import { connect, type Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred, waitFor } from '../helpers/wait.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
async function heapUsed(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}

let upstream: TestUpstream
let gateway: TestGateway
const release = deferred()

beforeAll(async () => {
  // /hold is held until the end: the requests pipelined behind it wait.
  upstream = await startUpstream(async (req, res) => {
    if (req.url === '/hold') await release.promise
    res.end('ok')
  })
  gateway = await startTestGateway({
    server: { hosts: ['a'] },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  })
})
afterAll(async () => {
  release.resolve()
  await gateway?.close()
  await upstream?.close()
})

const CONNECTIONS = 20
const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost:a\r\n\r\n`

describe('HTTP/1.1 requests pipelined far past the limit in one write', () => {
  it('are not all parsed and held: the connection is closed, and the memory is not kept', async () => {
    const port = Number(new URL(gateway.url).port)
    const flood = GET('/hold') + GET('/x').repeat(Math.floor(65_536 / GET('/x').length))
    const before = await heapUsed()
    const sockets: Socket[] = []
    const closed: Array<Promise<unknown>> = []
    for (let i = 0; i < CONNECTIONS; i++) {
      const socket = connect({ port, host: '127.0.0.1' })
      socket.on('error', () => {})
      closed.push(new Promise((resolve) => socket.once('close', resolve)))
      socket.write(flood)
      sockets.push(socket)
    }
    const open = () => sockets.filter((socket) => !socket.destroyed && !socket.readableEnded).length
    // Every write read: each connection closed, or its first request at the upstream and the rest held.
    await waitFor(() => open() === 0 || upstream.started.filter((url) => url === '/hold').length === CONNECTIONS, 'every flood read', 20_000)
    const grown = (await heapUsed()) - before
    // Before: +73 MB held (20 × 2,521 requests), every connection open.
    expect(grown, `heap +${(grown / 1_048_576).toFixed(0)} MB`).toBeLessThan(20 * 1_048_576)
    await waitFor(() => open() === 0, 'the flooding connections closed by the gateway', 5_000).catch(() => {})
    expect(open(), 'flooding connections still open').toBe(0)
    await Promise.all(closed)
  })

  it('a client pipelining 16 requests in one write still gets its 16 answers, in order', async () => {
    const port = Number(new URL(gateway.url).port)
    const paths = Array.from({ length: 16 }, (_, i) => `/p${i}`)
    const socket = connect({ port, host: '127.0.0.1' })
    socket.on('error', () => {})
    let text = ''
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
    socket.write(paths.map(GET).join(''))
    await waitFor(() => (text.match(/HTTP\/1\.1 200 /g)?.length ?? 0) === 16 || socket.destroyed, '16 answers')
    socket.destroy()
    expect(text.match(/HTTP\/1\.1 200 /g)?.length).toBe(16)
    expect(upstream.started.filter((url) => url.startsWith('/p'))).toEqual(paths)
  })
})
