// Replaced runtimes are retired by one loop, every 50 ms while any drains. An upstream pool's close
// waits for the streams still on it: a runtime retired at its shutdown_timeout with an SSE stream
// open had its pool's close wait for that stream, and the loop waited on the close, so no later
// reload's replaced runtime was ever retired (its function threads, pools and clients kept).
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { echo, startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { threadsNamed } from '../helpers/threads.ts'
import { deferred, waitFor } from '../helpers/wait.ts'

const ECHO = fileURLToPath(new URL('../fixtures/functions/echo.ts', import.meta.url))
const slowAnswer = deferred()
let events: TestUpstream
let api: TestUpstream
let gw: TestGateway

const config = (eventsTag: string, threads: number, shutdownTimeout: string) => ({
  server: { shutdown_timeout: shutdownTimeout },
  upstreams: [
    { name: 'events', url: events.url, headers: { 'x-tag': eventsTag } },
    { name: 'api', url: api.url },
  ],
  functions: [{ name: 'fnx', module: ECHO, concurrency: threads }],
  routes: [
    { id: 'events', path: '/events/*', upstream: 'events', public: true },
    { id: 'api', path: '/api/*', upstream: 'api', public: true },
    { id: 'fnx', path: '/fnx', function: 'fnx', public: true },
  ],
})

const functionThreads = () => threadsNamed('function fnx')

beforeAll(async () => {
  // A stream that goes on until its client leaves: a beat every 100 ms.
  events = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const beat = setInterval(() => res.write('data: beat\n\n'), 100)
    req.socket.once('close', () => clearInterval(beat))
  })
  api = await startUpstream(async (req, res, received) => {
    if (req.url === '/api/slow') await slowAnswer.promise
    echo(req, res, received)
  })
  gw = await startTestGateway(config('one', 2, '1s'))
  await waitFor(() => functionThreads() === 2, 'the function\'s two threads')
})

afterAll(async () => {
  slowAnswer.resolve()
  await gw?.close()
  await events?.close()
  await api?.close()
})

it('a stream held past shutdown_timeout does not stop later reloads\' runtimes from retiring', async () => {
  const stream = await request(`${gw.url}/events/live`)
  expect(stream.statusCode).toBe(200)
  const beats = stream.body[Symbol.asyncIterator]()
  await beats.next()
  try {
    // The events upstream's settings change: its pool is the first runtime's alone, and is closed at
    // that runtime's shutdown_timeout with the stream still on it.
    // The first runtime's shutdown_timeout is 1 s; the second's 30 s, so only its request's end retires it.
    await gw.writeConfig(config('two', 2, '30s'))
    expect((await gw.reload()).ok).toBe(true)
    const retiredAt = Date.now() + 1_000 + 300
    await waitFor(() => Date.now() > retiredAt, 'the first runtime\'s shutdown_timeout to pass')
    await beats.next() // the stream still flows: its pool waits for it

    // A request in flight on the second runtime as the third replaces it, with a function of another size.
    const slow = request(`${gw.url}/api/slow`)
    await waitFor(() => api.started.includes('/api/slow'), 'the slow request at its upstream')
    await gw.writeConfig(config('two', 3, '30s'))
    expect((await gw.reload()).ok).toBe(true)
    await waitFor(() => functionThreads() === 5, 'the new function\'s three threads beside the old two')
    slowAnswer.resolve()
    const answered = await slow
    await answered.body.dump()
    expect(answered.statusCode).toBe(200)
    // The second runtime has nothing in flight now: its function's threads end with it.
    await waitFor(() => functionThreads() === 3, 'the replaced function\'s threads to end', 5_000)
  } finally {
    await beats.return?.()
  }
}, 30_000)
