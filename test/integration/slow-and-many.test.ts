// Slow and many (issue 13, point 10): while attackers hold connections open, trickle headers or
// bodies, or stop reading a large response, a normal client keeps being answered, and every
// attacker is let go by the limit the README names ("Limits and timeouts"). The gateway runs as a
// real `bouncer serve` process, so the attackers and the normal client in this process do not
// share its event loop, and its open file descriptors can be counted. Each test prints what the
// normal client saw; the latency bound is generous on purpose (two cores shared with other work):
// it catches a gateway that stops answering, not a slow machine.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { stringify } from 'yaml'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { BIN, startServe, type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { allowAnyCaller, startTestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

const P99_BOUND_MS = 2_000
const BIG = 256 * 1024 * 1024
const STEADY = 8 * 1024 * 1024
const CHUNK = 64 * 1024
/** Loopback socket buffers autotune to a few MB each; the stalled exchange crosses two sockets. */
const IN_FLIGHT_BOUND = 32 * 1024 * 1024
const MB = 1024 * 1024

let upstream: TestUpstream
let dir: string
const gateways: ServeProcess[] = []
/**
 * One gateway for the tests whose limits do not get in each other's way (send_timeout, and
 * keep_alive_timeout, which runs only between requests): started by the first, stopped after all.
 */
const SHARED = { send_timeout: '3s', keep_alive_timeout: '1s' }
let shared: Promise<{ gateway: ServeProcess; port: number }> | undefined
const attackers = new Set<Socket>()
/** The upstream's side of the /big download the stalled client asked for. */
const big = { written: 0, cutAt: 0, finished: false }

beforeAll(async () => {
  upstream = await startUpstream(async (req, res, received) => {
    if (req.url === '/big') await stream(res, BIG, true)
    else if (req.url === '/steady') await stream(res, STEADY, false)
    else if (req.url === '/quiet') await sleep(4_000).then(() => res.end('late but fine'))
    else res.end(JSON.stringify({ ok: true, bytes: received.bodyBytes }))
  })
  dir = await mkdtemp(join(tmpdir(), 'bouncer-slow-'))
})

afterEach(async () => {
  for (const socket of attackers) socket.destroy()
  attackers.clear()
  await Promise.all(gateways.splice(0).map((gateway) => gateway.stop()))
})

afterAll(async () => {
  await shared?.then(({ gateway }) => gateway.stop(), () => {})
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

/** Writes `size` bytes with backpressure, so what it has written is what the gateway has taken. */
async function stream(res: ServerResponse, size: number, track: boolean): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size })
  const chunk = Buffer.alloc(CHUNK, 0x61)
  if (track) {
    Object.assign(big, { written: 0, cutAt: 0, finished: false })
    res.once('close', () => (big.cutAt = big.finished ? 0 : performance.now()))
  }
  for (let written = 0; written < size && !res.destroyed; written += CHUNK) {
    if (track) big.written = written
    if (!res.write(chunk)) await drainOrClose(res)
  }
  if (track) big.finished = !res.destroyed
  res.end()
}

function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const go = () => {
      res.off('drain', go)
      res.off('close', go)
      resolve()
    }
    res.on('drain', go)
    res.on('close', go)
  })
}

function config(server: Record<string, unknown>): Record<string, unknown> {
  return {
    server: { listen: '127.0.0.1:0', ...server },
    admin: { listen: '127.0.0.1:0' },
    audit: { sinks: [], spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'app', url: upstream.url }],
    routes: [{ id: 'app', path: '/*', upstream: 'app', public: true }],
  }
}

async function writeConfig(server: Record<string, unknown>): Promise<string> {
  const file = join(dir, `bouncer-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`)
  await writeFile(file, stringify(config(server)))
  return file
}

async function startGateway(server: Record<string, unknown>): Promise<{ gateway: ServeProcess; port: number }> {
  const gateway = await startServe(['--config', await writeConfig(server)])
  gateways.push(gateway)
  return { gateway, port: Number(new URL(gateway.url).port) }
}

function sharedGateway(): Promise<{ gateway: ServeProcess; port: number }> {
  shared ??= writeConfig(SHARED).then(async (file) => {
    const gateway = await startServe(['--config', file])
    return { gateway, port: Number(new URL(gateway.url).port) }
  })
  return shared
}

/** The gateway process's open file descriptors: one per client connection, among others. */
function openFds(gateway: ServeProcess): number {
  return readdirSync(`/proc/${gateway.child.pid}/fd`).length
}

function rssBytes(gateway: ServeProcess): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${gateway.child.pid}/status`, 'utf8'))?.[1]) * 1024
}

interface Attacker {
  socket: Socket
  received: string
  lastDataAt: number | null
  endedAt: number | null
  closedAt: number | null
}

/**
 * Opens `count` raw connections, a batch at a time so the listen backlog never overflows.
 * `halfOpen`: the attacker never closes its side, even after the gateway closed its own.
 * `read: false`: nothing is read beyond what the socket buffers by itself.
 */
async function openAttackers(port: number, count: number, options: { halfOpen?: boolean; read?: boolean } = {}): Promise<Attacker[]> {
  const { halfOpen = false, read = true } = options
  const all: Attacker[] = []
  for (let start = 0; start < count; start += 250) {
    const opening: Promise<unknown>[] = []
    for (let i = start; i < Math.min(count, start + 250); i++) {
      const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: halfOpen })
      attackers.add(socket)
      const attacker: Attacker = { socket, received: '', lastDataAt: null, endedAt: null, closedAt: null }
      if (read) {
        socket.on('data', (chunk: Buffer) => {
          attacker.received += chunk.toString('latin1')
          attacker.lastDataAt = performance.now()
        })
      }
      socket.on('error', () => {})
      socket.on('end', () => (attacker.endedAt = performance.now()))
      socket.on('close', () => {
        attacker.closedAt = performance.now()
        attackers.delete(socket)
      })
      all.push(attacker)
      opening.push(Promise.race([once(socket, 'connect'), once(socket, 'close')]))
    }
    await Promise.all(opening)
  }
  return all
}

/** Sends `next()` to every open attacker every `everyMs`, until all are closed or the deadline. */
async function trickle(group: Attacker[], next: () => string, everyMs: number, deadlineMs: number): Promise<void> {
  const deadline = performance.now() + deadlineMs
  while (performance.now() < deadline && group.some((a) => a.closedAt === null)) {
    for (const attacker of group) if (attacker.closedAt === null) attacker.socket.write(next())
    await sleep(everyMs)
  }
}

/** Resolves once `read()` has not changed for `quietMs` (polled; gives up after `timeoutMs`). */
async function settled(read: () => number, quietMs = 500, timeoutMs = 15_000): Promise<number> {
  const deadline = performance.now() + timeoutMs
  let value = read()
  let since = performance.now()
  while (performance.now() < deadline) {
    await sleep(100)
    if (read() !== value) {
      value = read()
      since = performance.now()
    } else if (value > 0 && performance.now() - since >= quietMs) {
      return value
    }
  }
  throw new Error('the value never settled')
}

interface Sample {
  status: number
  ms: number
}

/** One GET as a well-behaved client sends it: a new connection each time, unless an agent keeps one. */
function timedGet(port: number, path: string, options: { agent?: Agent; timeoutMs?: number } = {}): Promise<Sample> {
  const started = performance.now()
  return new Promise((resolve) => {
    const done = (status: number) => resolve({ status, ms: performance.now() - started })
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: options.agent ?? false, timeout: options.timeoutMs ?? 10_000 }, (res: IncomingMessage) => {
      res.resume()
      res.on('end', () => done(res.statusCode ?? 0))
      res.on('error', () => done(0))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => done(0))
    req.end()
  })
}

/** A normal client: `requests` GETs, `concurrency` at a time. */
async function normalClient(port: number, options: { requests?: number; concurrency?: number; agent?: Agent } = {}): Promise<Sample[]> {
  const { requests = 200, concurrency = 4, agent } = options
  const samples: Sample[] = []
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      next++
      samples.push(await timedGet(port, '/ping', { agent }))
    }
  }))
  return samples
}

function summary(samples: Sample[]): { requests: number; ok: number; p50_ms: number; p99_ms: number; max_ms: number } {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b)
  const at = (q: number) => Math.round(ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? NaN)
  return { requests: samples.length, ok: samples.filter((s) => s.status === 200).length, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: Math.round(ms.at(-1) ?? NaN) }
}

function expectServed(samples: Sample[], p99BoundMs = P99_BOUND_MS): void {
  const seen = summary(samples)
  expect(seen.ok).toBe(seen.requests)
  expect(seen.p99_ms).toBeLessThan(p99BoundMs)
}

const statusOf = (attacker: Attacker) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(attacker.received)?.[1] ?? 0)
const spread = (times: Array<number | null>, from: number) => {
  const after = times.map((t) => Math.round((t ?? NaN) - from)).sort((x, y) => x - y)
  return { first_ms: after[0], last_ms: after.at(-1) }
}

describe('slow and many', () => {
  it('5,000 idle connections: others are served; each idle one gets 408 at headers_timeout and is let go', async () => {
    const { gateway, port } = await startGateway({ headers_timeout: '12s' })
    const baseline = openFds(gateway)
    const rssBefore = rssBytes(gateway)
    const opening = performance.now()
    // Half-open: they never close, even when the gateway does; only the gateway can let them go.
    const idle = await openAttackers(port, 5_000, { halfOpen: true })
    const openedMs = Math.round(performance.now() - opening)
    const seen = await normalClient(port)
    const stillOpen = idle.filter((a) => a.endedAt === null).length
    const held = openFds(gateway) - baseline
    const rssGrowth = rssBytes(gateway) - rssBefore
    console.log('5,000 idle connections', { opened_in_ms: openedMs, gateway_fds_held: held, gateway_rss_growth_mb: +(rssGrowth / MB).toFixed(1), still_open_after_measuring: stillOpen, normal_client: summary(seen) })
    expectServed(seen)
    expect(stillOpen).toBe(5_000) // the load was there the whole time

    await waitFor(() => idle.every((a) => a.endedAt !== null), 'every idle connection to be answered', 25_000)
    await waitFor(() => openFds(gateway) - baseline < 100, 'the gateway to let go of the idle connections', 15_000)
    console.log('idle connections reaped', { answered: spread(idle.map((a) => a.endedAt), opening), with_408: idle.filter((a) => statusOf(a) === 408).length, gateway_fds_held_after: openFds(gateway) - baseline })
    expect(idle.every((a) => statusOf(a) === 408)).toBe(true)
  }, 55_000)

  it('500 clients trickling headers and 500 trickling bodies: others are served, each trickler gets 408, no body reaches the upstream', async () => {
    // Clients held behind the tricklers would wait until they are cut, at headers_timeout: 6 s, so the
    // normal client's p99 is bounded at 4 s here. At 3 s and 2 s, a CI machine running three test
    // files at once once took 2,009 ms for two of the 200 requests (p50 41 ms).
    const { port } = await startGateway({ headers_timeout: '6s', request_timeout: '12s' })
    upstream.received.length = 0
    const started = performance.now()
    const [headers, bodies] = await Promise.all([openAttackers(port, 500), openAttackers(port, 500)])
    for (const a of headers) a.socket.write('GET /slow HTTP/1.1\r\nHost: gw\r\n')
    for (const a of bodies) a.socket.write('POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n')
    let line = 0
    const attack = Promise.all([
      trickle(headers, () => `X-Slow-${line++}: 1\r\n`, 250, 15_000),
      trickle(bodies, () => 'a', 250, 15_000),
    ])
    await sleep(500) // every trickler is under way
    const seen = await normalClient(port)
    const stillOpen = [...headers, ...bodies].filter((a) => a.closedAt === null).length
    console.log('500 header + 500 body tricklers', { still_open_after_measuring: stillOpen, normal_client: summary(seen) })
    expectServed(seen, 4_000)
    await attack
    // Each is cut at request_timeout (12 s), the bodies' last ones near the attack's end (15 s) on a loaded CI.
    await waitFor(() => [...headers, ...bodies].every((a) => a.closedAt !== null), 'every trickler cut', 10_000)

    console.log('tricklers closed', {
      headers: { ...spread(headers.map((a) => a.closedAt), started), with_408: headers.filter((a) => statusOf(a) === 408).length },
      bodies: { ...spread(bodies.map((a) => a.closedAt), started), with_408: bodies.filter((a) => statusOf(a) === 408).length },
      // What those without a 408 got (status 0: nothing; then the first bytes), when any did.
      others: Object.entries(Object.groupBy([...headers, ...bodies].filter((a) => statusOf(a) !== 408), (a) => `${statusOf(a)} ${JSON.stringify(a.received.slice(0, 40))}`)).map(([k, v]) => `${v?.length}× ${k}`).slice(0, 5),
    })
    expect(headers.every((a) => a.closedAt !== null && statusOf(a) === 408)).toBe(true)
    expect(bodies.every((a) => a.closedAt !== null && statusOf(a) === 408)).toBe(true)
    // Cut by their deadlines from the start (headers_timeout 6 s, request_timeout 12 s), with room
    // for a loaded CI (seen: 8.3-9.6 s and 14.2-15+ s): a timer that each byte restarted would cut
    // them only after they stopped, past 21 s.
    const lastCut = (all: typeof headers) => Math.max(...all.map((a) => (a.closedAt as number) - started))
    expect(lastCut(headers)).toBeLessThan(12_000)
    expect(lastCut(bodies)).toBeLessThan(19_000)
    expect(upstream.received.filter((r) => r.url === '/upload')).toHaveLength(0)
  }, 60_000)

  it('a client that never reads a large response: the gateway buffers little, serves others, and cuts it at send_timeout', async () => {
    const { port } = await sharedGateway() // send_timeout: 3s
    const [stalled] = (await openAttackers(port, 1, { read: false })) as [Attacker]
    stalled.socket.write('GET /big HTTP/1.1\r\nHost: gw\r\n\r\n')
    const heldBack = await settled(() => big.written) // the buffers between upstream and client are full
    const stalledAt = performance.now()
    const seen = await normalClient(port)
    console.log('a stalled 256 MB download', { upstream_sent_mb: +(heldBack / MB).toFixed(1), normal_client: summary(seen) })
    expectServed(seen)
    expect(heldBack).toBeLessThan(IN_FLIGHT_BOUND)

    await waitFor(() => big.cutAt > 0, 'send_timeout to cut the stalled download', 20_000)
    let received = 0
    stalled.socket.on('data', (chunk: Buffer) => (received += chunk.length))
    await waitFor(() => stalled.closedAt !== null, 'the stalled client to see the connection end', 10_000)
    console.log('stalled download cut', { cut_after_stall_ms: Math.round(big.cutAt - stalledAt), client_received_mb: +(received / MB).toFixed(1) })
    expect(received).toBeLessThan(BIG)
  }, 50_000)

  it('send_timeout counts progress: a reader pausing for less than it, and a response slow to start, are not cut', async () => {
    const { port } = await sharedGateway() // send_timeout: 3s
    const quiet = timedGet(port, '/quiet', { timeoutMs: 15_000 }) // the upstream answers after 4 s
    const [reader] = (await openAttackers(port, 1, { read: false })) as [Attacker]
    let bytes = 0
    reader.socket.on('data', (chunk: Buffer) => (bytes += chunk.length)).pause()
    reader.socket.write('GET /steady HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n')
    let pauses = 0
    const deadline = performance.now() + 30_000
    while (reader.closedAt === null && performance.now() < deadline) {
      await sleep(700) // reads nothing: the gateway's writes stall
      pauses++
      reader.socket.resume()
      await sleep(20)
      reader.socket.pause()
    }
    const slow = await quiet
    slow.ms = Math.round(slow.ms)
    console.log('progress, not a stall', { pauses_of_700_ms: pauses, steady_mb_received: +(bytes / MB).toFixed(1), quiet_response: slow })
    expect(bytes).toBeGreaterThan(STEADY) // the whole body, and its headers
    expect(slow.status).toBe(200)
  }, 50_000)

  it('beyond max_connections a new connection is closed unanswered; admitted clients are still served', async () => {
    const { gateway, port } = await startGateway({ max_connections: 100, keep_alive_timeout: '30s' })
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      expect((await timedGet(port, '/ping', { agent })).status).toBe(200) // admitted: 1 of 100
      const idle = await openAttackers(port, 99)
      // Node accepts the backlog as its loop turns: a probe may still get a free slot (and give it back).
      await waitFor(async () => (await timedGet(port, '/ping')).status === 0, 'a connection over max_connections to be refused', 10_000)
      const probes = await Promise.all(Array.from({ length: 20 }, () => timedGet(port, '/ping')))
      const kept = await normalClient(port, { requests: 100, concurrency: 1, agent })
      console.log('at max_connections', { new_connections_refused: probes.filter((p) => p.status === 0).length, of: probes.length, admitted_keep_alive_client: summary(kept) })
      expect(probes.every((p) => p.status === 0)).toBe(true)
      expectServed(kept)
      await waitFor(() => gateway.stderr().includes('connection limit reached'), 'the refusal to be logged')

      for (const attacker of idle.slice(0, 10)) attacker.socket.destroy()
      await waitFor(async () => (await timedGet(port, '/ping')).status === 200, 'a freed slot to admit a new connection', 10_000)
    } finally {
      agent.destroy()
    }
  }, 50_000)

  it('idle keep-alive connections are closed after keep_alive_timeout', async () => {
    const { port } = await sharedGateway() // keep_alive_timeout: 1s
    const clients = await openAttackers(port, 1_000)
    for (const client of clients) client.socket.write('GET /ping HTTP/1.1\r\nHost: gw\r\n\r\n')
    await waitFor(() => clients.every((c) => c.received.endsWith('"ok":true,"bytes":0}')), 'every client to be answered', 20_000)
    await waitFor(() => clients.every((c) => c.closedAt !== null), 'the idle keep-alive connections to be closed', 15_000)
    const idleFor = clients.map((c) => Math.round((c.closedAt as number) - (c.lastDataAt as number))).sort((x, y) => x - y)
    console.log('1,000 idle keep-alive connections closed', { idle_for_min_ms: idleFor[0], idle_for_max_ms: idleFor.at(-1) })
    expect(clients.every((c) => /\r\nkeep-alive: timeout=1\r\n/i.test(c.received))).toBe(true)
  }, 50_000)

  /** The open-file limit warning `serve` logs at start under `ulimit -n 1024`. */
  async function fileLimitWarning(server: Record<string, unknown>): Promise<string> {
    const file = await writeConfig(server)
    // Set both soft and hard limits: Node raises the soft one to the hard one at start.
    const child = spawn('sh', ['-c', 'ulimit -n 1024 && exec "$0" "$@"', process.execPath, BIN, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.stdout.resume()
    const exited = once(child, 'exit')
    try {
      await waitFor(() => stderr.includes('the open-file limit is 1024'), 'the open-file limit warning', 20_000)
    } finally {
      child.kill('SIGTERM')
      await exited
    }
    const warning = stderr.split('\n').find((line) => line.includes('open-file limit')) ?? ''
    return (JSON.parse(warning) as { msg: string }).msg
  }

  it('serve warns at start when the open-file limit cannot hold max_connections', async () => {
    console.log('start-up warning', await fileLimitWarning({}))
  }, 30_000)

  it('with server.workers the warning counts every worker\'s connections and pools: one process holds them all', async () => {
    // 500 + the upstream's pool of 128 fit 1,024 descriptors once, not twice.
    expect(await fileLimitWarning({ max_connections: 500, workers: 2 })).toContain('2 workers × (server.max_connections + upstream and datasource pools) + 64 spare need 1320 file descriptors')
  }, 30_000)

  it('a client that leaves while its request waits for a key fetch does not leave the request hanging', async () => {
    // A key set whose next fetch is slow: the token's new kid makes the gateway fetch it mid-request.
    const first = await generateKeyPair('ES256')
    const second = await generateKeyPair('ES256')
    const jwks = { keys: [{ ...(await exportJWK(first.publicKey)), kid: 'first', alg: 'ES256' }], delayMs: 0, fetches: 0 }
    const keyServer = createServer((_req, res) => {
      jwks.fetches++
      setTimeout(() => res.end(JSON.stringify({ keys: jwks.keys })), jwks.delayMs)
    })
    keyServer.listen(0, '127.0.0.1')
    await once(keyServer, 'listening')
    const issuer = 'https://issuer.test/'
    const gateway = await startTestGateway({
      server: { shutdown_timeout: '1s' },
      issuers: [{ name: 'slow-keys', issuer, audiences: ['api://bouncer'], algorithms: ['ES256'], jwks_cooldown: '0s', jwks_uri: `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/jwks` }],
      ...allowAnyCaller(['slow-keys']),
      upstreams: [{ name: 'app', url: upstream.url }],
      routes: [{ id: 'app', path: '/*', upstream: 'app' }],
    })
    try {
      await waitFor(() => gateway.logs.some((line) => line.includes('issuer keys loaded')), 'the first key load')
      jwks.keys.push({ ...(await exportJWK(second.publicKey)), kid: 'second', alg: 'ES256' })
      jwks.delayMs = 1_000
      const now = Math.floor(Date.now() / 1000)
      const token = await new SignJWT({ sub: 'leaver', aud: 'api://bouncer', iss: issuer, iat: now, exp: now + 300 }).setProtectedHeader({ alg: 'ES256', kid: 'second' }).sign(second.privateKey)
      const [leaver] = (await openAttackers(Number(new URL(gateway.url).port), 1)) as [Attacker]
      leaver.socket.write(`POST /upload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${token}\r\nContent-Length: 100\r\n\r\nten bytes.`)
      await waitFor(() => jwks.fetches === 2, 'the key fetch for the new kid')
      leaver.socket.destroy() // gone before the keys arrive
      await waitFor(() => gateway.state.inFlight === 0, 'the request to finish', 10_000)
      expect(upstream.received.filter((r) => r.headers['authorization'] !== undefined || r.url === '/upload')).toHaveLength(0)
    } finally {
      await gateway.close()
      keyServer.close()
    }
  })

  it('a client timeout of 0 is refused: Node would read it as "never"', async () => {
    const result = await runCliInProcess(['check', '--config', await writeConfig({ keep_alive_timeout: '0s', send_timeout: '0s' })])
    expect(result.code).toBe(1)
    expect(result.stdout + result.stderr).toMatch(/server\.keep_alive_timeout: must be more than 0/)
    expect(result.stdout + result.stderr).toMatch(/server\.send_timeout: must be more than 0/)
  })
})
