// A listening server emits 'error' when an accept fails (EMFILE past libuv's reserve descriptor,
// ENFILE, ENOMEM): one connection lost, which is said, and the gateway goes on. The bind's
// one-shot 'error' listener was left on the server instead: it swallowed the first such error, and
// the second, with no listener, threw (an uncaught exception: the gateway drained and stopped).
// Such an accept cannot be had on demand (libuv's reserve descriptor takes the usual EMFILE), so
// the test emits what Node emits for one, on a real listening server.
import { once } from 'node:events'
import { createServer } from 'node:http'
import { Writable } from 'node:stream'
import { afterEach, expect, it } from 'vitest'
import { listen } from '../../../src/instance/listen.ts'
import { createLogger } from '../../../src/telemetry/index.ts'

let server = createServer()

afterEach(async () => {
  if (!server.listening) return
  server.close()
  await once(server, 'close')
})

const acceptFailed = (code: string) => Object.assign(new Error(`accept ${code}`), { code, errno: -24, syscall: 'accept' })

it('logs each failed accept and keeps one error listener, the logging one', async () => {
  const lines: string[] = []
  const logger = createLogger({ destination: new Writable({ write: (chunk: Buffer, _encoding, done) => void (lines.push(chunk.toString()), done()) }) })
  server = createServer((_req, res) => res.end('ok'))
  const listeningBefore = server.listenerCount('listening') // node:http's own
  const address = await listen(server, { host: '127.0.0.1', port: 0 }, logger, 'gateway')
  expect(address.port).toBeGreaterThan(0)
  expect(server.listenerCount('error')).toBe(1)
  expect(server.listenerCount('listening')).toBe(listeningBefore)
  server.emit('error', acceptFailed('EMFILE'))
  server.emit('error', acceptFailed('ENFILE'))
  server.emit('error', acceptFailed('EMFILE'))
  const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'a connection could not be accepted')
  expect(logged.map((line) => [line.listener, line.code])).toEqual([['gateway', 'EMFILE'], ['gateway', 'ENFILE'], ['gateway', 'EMFILE']])
  const res = await fetch(`http://127.0.0.1:${address.port}/`)
  expect(await res.text()).toBe('ok')
})

it('an accept that keeps failing within one turn is thrown, to the process\'s last resort (libuv would retry it for ever)', async () => {
  const logger = createLogger({ destination: new Writable({ write: (_chunk, _encoding, done) => done() }) })
  server = createServer()
  await listen(server, { host: '127.0.0.1', port: 0 }, logger, 'gateway')
  for (let i = 0; i < 20; i++) server.emit('error', acceptFailed('ENOMEM'))
  expect(() => server.emit('error', acceptFailed('ENOMEM'))).toThrow('accept ENOMEM')
  // The next turn starts the count again.
  await new Promise((resolve) => setImmediate(resolve))
  expect(() => server.emit('error', acceptFailed('EMFILE'))).not.toThrow()
})

it('a bind that fails rejects with its error and leaves no listener behind', async () => {
  const taken = createServer()
  taken.listen(0, '127.0.0.1')
  await once(taken, 'listening')
  const { port } = taken.address() as { port: number }
  const logger = createLogger({ destination: new Writable({ write: (_chunk, _encoding, done) => done() }) })
  server = createServer()
  const listeningBefore = server.listenerCount('listening')
  try {
    await expect(listen(server, { host: '127.0.0.1', port }, logger, 'admin')).rejects.toMatchObject({ code: 'EADDRINUSE' })
    expect([server.listenerCount('error'), server.listenerCount('listening')]).toEqual([0, listeningBefore])
  } finally {
    taken.close()
  }
})
