// A request whose body is still arriving when a reload replaces its function, and whose old pool
// is then closed (server.shutdown_timeout after the swap, within request_timeout), is told so. It
// was answered 503 upstream_saturated "Function … already has 1 invocation in flight" with
// Retry-After, when nothing was in flight: the pool was closed (a probe).
import { once } from 'node:events'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'

let gw: TestGateway

const config = {
  server: { shutdown_timeout: '1s', request_timeout: '60s' },
  functions: [{ name: 'upload', module: './functions/upload.mjs', concurrency: 1 }],
  routes: [{ id: 'upload', path: '/upload', function: 'upload', public: true }],
}
const moduleText = (version: number) => `export async function handler(event) { return { version: ${version}, body: event.body } }\n`

async function writeModule(version: number): Promise<void> {
  const path = join(gw.dir, 'functions', 'upload.mjs')
  await writeFile(`${path}.next`, moduleText(version))
  await rename(`${path}.next`, path)
}

beforeAll(async () => {
  gw = await startTestGateway({ routes: [] })
  await mkdir(join(gw.dir, 'functions'))
  await writeModule(1)
  await gw.writeConfig(config)
  expect((await gw.reload()).ok).toBe(true)
})
afterAll(async () => {
  await gw?.close()
})

it('a body that finishes after its replaced function\'s pool closed is answered saying so, not "in flight"', async () => {
  const port = Number(new URL(gw.url).port)
  const socket = connect({ port, host: '127.0.0.1' })
  await once(socket, 'connect')
  let answer = ''
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
  const ended = once(socket, 'close')
  try {
    socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello')
    const runtime = gw.state.runtime
    await waitFor(() => runtime.usage.inFlight === 1, 'the upload under way')
    const old = runtime.functions.get('upload')
    await writeModule(2)
    await gw.writeConfig(config)
    expect((await gw.reload()).ok).toBe(true)
    // Closed shutdown_timeout after the swap, the upload still unfinished: it takes no invocation.
    await waitFor(() => {
      const slot = old?.take() ?? null
      if (slot) old?.giveBack(slot)
      return slot === null && old?.inFlight === 0
    }, 'the old pool closed')
    socket.write('world')
    await ended
  } finally {
    socket.destroy()
  }
  const [head = '', body = ''] = answer.split('\r\n\r\n')
  expect(head.split('\r\n')[0]).toBe('HTTP/1.1 502 Bad Gateway')
  const problem = JSON.parse(body) as { code: string; detail: string }
  expect(problem.code).toBe('function_error')
  expect(problem.detail).toBe('Function "upload" was stopped before this request\'s body had come: a reload replaced it (or the gateway is shutting down), and server.shutdown_timeout has passed. It was not run.')
})
