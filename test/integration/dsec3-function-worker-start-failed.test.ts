// A worker thread that cannot start at all (no file descriptors left: EMFILE; no memory for a new
// thread) never tried the module. The pool took it for a failed load: its pool's first worker said
// "its module could not be loaded" (and a reload adding the function was refused for it, its
// `loaded` an error for good), and an invocation answered "failed: its worker stopped", as if the
// handler had crashed, then started another worker at once into the same shortage. Now the log and
// the problem say the worker could not be started, and the next invocation starts one again.
// The shortage is real: this process's descriptors are used up with /dev/null around the start.
import { closeSync, openSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Client, request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { FunctionConfig } from '../../src/config/index.ts'
import { createFunctionPool } from '../../src/functions/pool.ts'
import { createBackgroundTasks } from '../../src/telemetry/background.ts'
import { createLogger } from '../../src/telemetry/logger.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitForText } from '../helpers/wait.ts'

let dir: string
let gw: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-dsec3-start-'))
  // `bye`: the worker ends its thread after answering, so the next invocation must start one.
  await writeFile(join(dir, 'fn.mjs'), "export async function handler(event) {\n  if (event.queryStringParameters?.bye) setTimeout(() => process.exit(0), 10)\n  return { statusCode: 200, body: 'ok' }\n}\n")
  gw = await startTestGateway({
    functions: [{ name: 'dsec3fn', module: join(dir, 'fn.mjs'), concurrency: 1 }],
    routes: [{ id: 'fn', path: '/fn', function: 'dsec3fn', public: true }],
  })
})

afterAll(async () => {
  await gw?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** Every free descriptor of this process, held until the returned function gives them back. */
function useUpDescriptors(): () => void {
  const held: number[] = []
  try {
    for (;;) held.push(openSync('/dev/null', 'r'))
  } catch (err) {
    if ((err as { code?: string }).code !== 'EMFILE') throw err
  }
  return () => {
    for (const fd of held.splice(0)) closeSync(fd)
  }
}

it('an invocation whose worker cannot start says so, and the next one runs', async () => {
  // One connection, opened before the shortage: accepting another would need a descriptor.
  const client = new Client(gw.url, { pipelining: 1 })
  try {
    const bye = await client.request({ method: 'GET', path: '/fn?bye=1' })
    expect(bye.statusCode).toBe(200)
    await bye.body.dump()
    await waitForText(() => gw.logs.join(''), 'a worker stopped between invocations')
    const release = useUpDescriptors()
    let res
    try {
      res = await client.request({ method: 'GET', path: '/fn' })
    } finally {
      release()
    }
    const problem = await res.body.json() as { status: number; detail: string }
    expect(res.statusCode).toBe(502)
    expect(problem.detail).toContain('could not start a worker')
    expect(problem.detail).not.toContain('its worker stopped')
    const logs = gw.logs.join('')
    expect(logs).toContain('function dsec3fn: its worker thread could not be started (Worker initialization failure: EMFILE)')
    expect(logs).not.toContain('module could not be loaded')
    expect(logs).not.toContain('function dsec3fn failed: its worker stopped')
  } finally {
    await client.close()
  }
  const again = await request(`${gw.url}/fn`)
  expect(again.statusCode).toBe(200)
  expect(await again.body.text()).toBe('ok')
})

it('a pool whose first worker cannot start does not take its module for one that failed to load', async () => {
  const lines: string[] = []
  const logger = createLogger({ level: 'debug', destination: new Writable({ write(chunk: Buffer, _encoding, done) { lines.push(chunk.toString('utf8')); done() } }) })
  const background = createBackgroundTasks(logger, { backgroundFailed() {} })
  const config = { name: 'dsec3first', module: join(dir, 'fn.mjs'), handler: 'handler', concurrency: 1, timeout: 5_000, memory: 128, environment: {} } as unknown as FunctionConfig
  const release = useUpDescriptors()
  let pool
  try {
    pool = createFunctionPool(config, { logger, background }) // its warm worker starts now, into the shortage
    await waitForText(() => lines.join(''), 'could not be started')
  } finally {
    release()
  }
  try {
    expect(lines.join('')).not.toContain('could not be loaded')
    const slot = pool.take()
    expect(slot).not.toBeNull()
    if (slot === null) return
    const answer = await pool.run(slot, JSON.stringify({ rawPath: '/', queryStringParameters: {} }) as never, { requestId: 'r1', traceId: null } as never)
    pool.giveBack(slot)
    expect(answer).toMatchObject({ status: 200, body: 'ok' })
    // The module's load is what the first worker that ran said: it loaded.
    expect(await pool.loaded).toBeNull()
  } finally {
    await pool.close()
  }
})
