// 50 MB (or more: see SIZE) each way through a real `bouncer serve` process. While one side stalls, the other must be
// held back (backpressure) so that only socket buffers' worth is in flight, and the gateway's
// resident memory must not grow while it waits: it streams, it never buffers a body. (Over a
// whole fast transfer RSS does rise by GC slack — freed 64 KB chunks V8 has not collected yet —
// which plateaus near 80 MB whatever the body size, so it is not what this test measures.)
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const MB = 1024 * 1024
/** The most a TCP socket's buffer autotunes to, in bytes (`net.ipv4.tcp_rmem` or `tcp_wmem`'s third field). */
const bufferMax = (name: string) => Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/)[2])
/**
 * What the kernel alone may hold in flight: two sockets between the stalled side and the gateway,
 * each with a send and a receive buffer that autotune up to the host's maximum (6 and 4 MB by
 * default; 32 MB of receive buffer on some hosts, where 24.9 MB in flight was seen under CI's load).
 * In flight past this, the gateway took the body without holding its sender back.
 */
const IN_FLIGHT_BOUND = Math.max(20 * MB, 2 * (bufferMax('tcp_rmem') + bufferMax('tcp_wmem')))
/** 50 MB, or more where the bound is larger: a sender not held back sends it all, past the bound. */
const SIZE = Math.max(50 * MB, IN_FLIGHT_BOUND + 30 * MB)
const CHUNK = 64 * 1024
const STALL_MS = 1_000

let downloadWritten = 0
let releaseUpload: () => void = () => {}
const uploadGate = new Promise<void>((resolve) => (releaseUpload = resolve))

let upstream: TestUpstream
let gateway: ServeProcess
let dir: string

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024
}

/** Samples the gateway's RSS while `work` runs; returns the peak growth over the start. */
async function peakGrowth(work: () => Promise<void>): Promise<number> {
  const pid = gateway.child.pid as number
  const start = rssBytes(pid)
  let peak = start
  let running = true
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, rssBytes(pid))
      await sleep(20)
    }
  })()
  await work()
  running = false
  await sampler
  return peak - start
}

beforeAll(async () => {
  upstream = await startUpstream(
    async (req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SIZE })
        const chunk = Buffer.alloc(CHUNK, 0x61)
        for (downloadWritten = 0; downloadWritten < SIZE; downloadWritten += CHUNK) {
          if (!res.write(chunk)) await new Promise((r) => res.once('drain', r))
        }
        res.end()
        return
      }
      if (req.url === '/upload-slow') await uploadGate // does not read its body until the test says so
      let bytes = 0
      for await (const chunk of req) bytes += (chunk as Buffer).length
      res.end(JSON.stringify({ bytes }))
    },
    { readBody: false },
  )
  dir = await mkdtemp(join(tmpdir(), 'bouncer-stream-'))
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0', max_body_bytes: SIZE * 2 },
    admin: { listen: '127.0.0.1:0' },
    audit: { sinks: [] },
    upstreams: [{ name: 'files', url: upstream.url }],
    routes: [{ id: 'files', path: '/*', upstream: 'files', public: true }],
  }))
  gateway = await startServe(['--config', file])
  // Warm up the gateway so the first-request allocations do not count as growth.
  await (await request(`${gateway.url}/warm`, { method: 'POST', body: 'x' })).body.text()
})

afterAll(async () => {
  await gateway.stop()
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

describe('streaming', () => {
  it('a large response (SIZE): a stalled reader holds the upstream back, and memory stays flat', async () => {
    let received = 0
    let inFlight = 0
    let iterator: AsyncIterator<Buffer> | undefined
    const growth = await peakGrowth(async () => {
      const res = await request(`${gateway.url}/big`)
      expect(res.statusCode).toBe(200)
      iterator = res.body[Symbol.asyncIterator]()
      received += ((await iterator.next()).value as Buffer).length
      await sleep(STALL_MS) // the client reads nothing
      inFlight = downloadWritten - received // sent by the upstream, not yet read by the client
    })
    for (let next = await iterator!.next(); !next.done; next = await iterator!.next()) received += next.value.length
    expect(received).toBe(SIZE)
    expect(inFlight).toBeLessThan(IN_FLIGHT_BOUND)
    expect(growth).toBeLessThan(30 * 1024 * 1024)
  })

  it('a large chunked upload (SIZE): a stalled upstream holds the client back, and memory stays flat', async () => {
    let sent = 0
    const source = new Readable({
      read() {
        if (sent >= SIZE) return void this.push(null)
        sent += CHUNK
        this.push(Buffer.alloc(CHUNK, 0x62))
      },
    })
    let pending: ReturnType<typeof request> | undefined
    const growth = await peakGrowth(async () => {
      pending = request(`${gateway.url}/upload-slow`, { method: 'PUT', body: source })
      await sleep(STALL_MS) // the upstream reads nothing
    })
    const sentBeforeStallEnded = sent // all of it in flight: the upstream has read none
    releaseUpload()
    const body = await (await pending!).body.text()
    expect(JSON.parse(body)).toEqual({ bytes: SIZE })
    expect(sentBeforeStallEnded).toBeLessThan(IN_FLIGHT_BOUND)
    expect(growth).toBeLessThan(30 * 1024 * 1024)
  })
})
