// A reload picks up a changed module: the function gets a new pool, the old one finishes what it
// was running and is then closed. An unchanged function keeps its pool, warm workers and module
// state included. The module's path is relative to the config file's folder.
import { once } from 'node:events'
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FunctionPool } from '../../src/functions/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitFor } from '../helpers/wait.ts'

const held: ServerResponse[] = []
const holder = createServer((_req, res) => void held.push(res))
let holdUrl: string
let gw: TestGateway

const CONFIG = {
  functions: [{ name: 'counter', module: './functions/counter.ts', concurrency: 1 }],
  routes: [{ id: 'counter', path: '/counter', function: 'counter', public: true }],
}

/** A module that counts its calls in a module variable (so a kept pool shows), optionally held open by the test. */
const counterModule = (version: number) => `
let calls = 0
export async function handler(event: { queryStringParameters?: { hold?: string; die?: string } }) {
  calls++
  const hold = event.queryStringParameters?.hold
  if (hold) await (await fetch(hold)).text()
  if (event.queryStringParameters?.die) process.exit(3)
  return { version: ${version}, calls }
}
`

beforeAll(async () => {
  holder.listen(0, '127.0.0.1')
  await once(holder, 'listening')
  holdUrl = `http://127.0.0.1:${(holder.address() as AddressInfo).port}/release`
  // The gateway's folder exists once it is started: the first module goes where its config will be.
  gw = await startTestGateway({ routes: [] })
  await mkdir(join(gw.dir, 'functions'))
  await writeModule(join(gw.dir, 'functions', 'counter.ts'), counterModule(1))
  await gw.writeConfig(CONFIG)
  expect((await gw.reload()).ok).toBe(true)
})

afterAll(async () => {
  // Release any invocation still held first: the gateway's drain waits for it.
  holder.closeAllConnections()
  holder.close()
  await gw?.close()
})

/** Until the pool takes no more invocations: closing (a worker taken while it is still open is given back at once, as a taken one would hold its close). */
async function closingOf(pool: FunctionPool | undefined): Promise<void> {
  await waitFor(() => {
    const slot = pool?.take() ?? null
    if (slot) pool?.giveBack(slot)
    return slot === null
  }, 'the old pool closing')
}

/**
 * Starts `start` (a call the holder keeps running) on the function's pool, then reloads `gateway`
 * with `config` and the module at `nextVersion`, and waits until the old pool is closing: the held
 * invocation is then what a retired pool still runs.
 */
async function retireWhileHeld<T>(gateway: TestGateway, config: Record<string, unknown>, start: () => Promise<T>, nextVersion: number): Promise<{ inFlight: Promise<T> }> {
  const inFlight = start()
  await waitFor(() => held.length === 1, 'an invocation running on the old pool')
  const old = gateway.state.runtime.functions.get('counter')
  await writeModule(join(gateway.dir, 'functions', 'counter.ts'), counterModule(nextVersion))
  await gateway.writeConfig(config)
  expect((await gateway.reload()).ok).toBe(true)
  await closingOf(old) // closing: it takes no more invocations, shutdown_timeout after the swap
  return { inFlight } // in an object: an async function's answer would wait for the promise itself
}

/**
 * Writes a module whole, as an editor that saves by renaming does: a pool's worker may be loading
 * the file at that moment (all of a pool's workers start with it), and one that read it truncated
 * mid-write logged a load failure no reload caused (a CI flake).
 */
async function writeModule(path: string, text: string): Promise<void> {
  await writeFile(`${path}.next`, text)
  await rename(`${path}.next`, path)
}

const call = async (query = '') => {
  const res = await request(`${gw.url}/counter${query}`)
  return (await res.body.json()) as { version: number; calls: number }
}

describe('reloading functions', () => {
  it('an unchanged module keeps its pool; a changed one gets a new pool, the old finishing its invocation first', async () => {
    expect(await call()).toEqual({ version: 1, calls: 1 })
    expect(await call()).toEqual({ version: 1, calls: 2 })

    expect((await gw.reload()).ok).toBe(true)
    expect(await call()).toEqual({ version: 1, calls: 3 }) // the same warm worker, its module state kept

    const old = gw.state.runtime.functions.get('counter')
    const inFlight = call(`?hold=${encodeURIComponent(holdUrl)}`)
    await waitFor(() => held.length === 1, 'an invocation running on the old pool')

    await writeModule(join(gw.dir, 'functions', 'counter.ts'), counterModule(2))
    expect((await gw.reload()).ok).toBe(true)
    expect(gw.state.runtime.functions.get('counter')).not.toBe(old)
    expect(await call()).toEqual({ version: 2, calls: 1 })

    held.splice(0).forEach((res) => res.end('go'))
    expect(await inFlight).toEqual({ version: 1, calls: 4 })
    // Once the old runtime is idle its pool is closed: it takes no more invocations.
    await closingOf(old)
  })

  // Found by review: a pool retired by a reload was closed shutdown_timeout after the swap with its
  // invocations stopped (502 to clients still waiting), as a shutdown does; only a shutdown should.
  it('an invocation still running when its retired pool closes finishes, past server.shutdown_timeout', async () => {
    const closingSoon = { ...CONFIG, functions: [{ ...CONFIG.functions[0], concurrency: 2 }], server: { shutdown_timeout: '100ms' } }
    await gw.writeConfig(closingSoon)
    expect((await gw.reload()).ok).toBe(true)
    const version = (await call()).version
    const { inFlight } = await retireWhileHeld(gw, closingSoon, () => call(`?hold=${encodeURIComponent(holdUrl)}`), version + 1)
    held.splice(0).forEach((res) => res.end('go'))
    expect((await inFlight).version).toBe(version)
    expect((await call()).version).toBe(version + 1)
    await gw.writeConfig(CONFIG)
    expect((await gw.reload()).ok).toBe(true)
  })

  it('a worker that dies while its retired pool drains fails its invocation at once (502), not at the timeout', async () => {
    // A request outlives its runtime's resources by server.shutdown_timeout at most: then the pool
    // closes under it. Two workers: one left idle, so take() answers null only once the pool is closing.
    const closingSoon = { ...CONFIG, functions: [{ ...CONFIG.functions[0], concurrency: 2 }], server: { shutdown_timeout: '100ms' } }
    await gw.writeConfig(closingSoon)
    expect((await gw.reload()).ok).toBe(true)
    const version = (await call()).version
    const { inFlight } = await retireWhileHeld(gw, closingSoon, () => request(`${gw.url}/counter?die=1&hold=${encodeURIComponent(holdUrl)}`), version + 1)
    const started = performance.now()
    held.splice(0).forEach((res) => res.end('go'))
    const res = await inFlight
    // Before: the pool, closing, took the exit for its own terminate and left the invocation to the timeout (504).
    expect(res.statusCode).toBe(502)
    expect(((await res.body.json()) as { code: string }).code).toBe('function_error')
    expect(performance.now() - started).toBeLessThan(3_000)
    expect((await call()).version).toBe(version + 1)
    await gw.writeConfig(CONFIG)
    expect((await gw.reload()).ok).toBe(true)
  })

  it('a reload whose module is missing is refused, and the running function keeps serving', async () => {
    const version = (await call()).version
    await gw.writeConfig({ ...CONFIG, functions: [{ ...CONFIG.functions[0], module: './functions/nowhere.ts' }] })
    const result = await gw.reload()
    expect(result.ok).toBe(false)
    expect(JSON.stringify(result)).toContain('functions[0].module: no such file')
    expect((await call()).version).toBe(version)
  })

  it('a reload whose module cannot be loaded (a syntax error, no handler export) is refused, and the running function keeps serving', async () => {
    // Before: taken (ok, no warning), and every call answered 502 function_error from then on.
    const module = join(gw.dir, 'functions', 'counter.ts')
    const logsBefore = gw.logs.length
    await gw.writeConfig(CONFIG)
    const version = (await call()).version
    const broken: Array<[string, string]> = [
      ['export async function handler( {\n', 'functions[0].module: its module could not be loaded: SyntaxError'],
      ['export async function main() { return 1 }\n', 'functions[0].module: its module could not be loaded: TypeError: '],
    ]
    for (const [text, reason] of broken) {
      await writeModule(module, text)
      const result = await gw.reload()
      expect(result.ok, text).toBe(false)
      expect(JSON.stringify(result)).toContain(reason)
      expect((await call()).version).toBe(version)
    }
    await writeModule(module, counterModule(version + 1))
    expect((await gw.reload()).ok).toBe(true)
    expect((await call()).version).toBe(version + 1)
    // The refused configs' pools were closed unreported: the log says the reload was refused, not that calls answer 502.
    expect(gw.logs.slice(logsBefore).join('')).not.toContain('its invocations answer 502')
  })

  // Found by review: only a pool's first load was heard; a replacement worker that read the file
  // edited on disk since (no reload) failed every call on it with nothing in the log or the counter.
  it('a replacement worker that finds the module broken on disk says so, though the pool loaded it before', async () => {
    const version = (await call()).version
    const module = join(gw.dir, 'functions', 'counter.ts')
    await writeModule(module, 'export async function handler( {\n') // edited on disk, not reloaded
    const died = await request(`${gw.url}/counter?die=1`) // its worker ends under the call, and is replaced at once
    expect(died.statusCode).toBe(502)
    await died.body.dump()
    await waitFor(() => gw.logs.join('').includes('function counter: its module could not be loaded'), 'the replacement\'s failed load in the log')
    await writeModule(module, counterModule(version + 1))
    expect((await gw.reload()).ok).toBe(true)
  })

  // Found by review: a pool a reload retired waits for its invocations (each up to the function's
  // timeout), but a shutdown closed only the pools in use: one still running there kept its request
  // open past the drain, the audit log closed under it, and its record was lost.
  it('a shutdown stops an invocation its retired pool still runs: the request is audited as cut, not lost', async () => {
    // The audit log is the start's (a reload does not change it): in a folder made before.
    const logDir = await mkdtemp(join(tmpdir(), 'bouncer-retired-'))
    const audit = { sinks: [{ type: 'sqlite', path: join(logDir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(logDir, 'spill') }
    const own = await startTestGateway({ routes: [], audit, server: { shutdown_timeout: '100ms' } })
    try {
      const config = { ...CONFIG, functions: [{ ...CONFIG.functions[0], concurrency: 2, timeout: '60s' }], server: { shutdown_timeout: '100ms' }, audit }
      await mkdir(join(own.dir, 'functions'))
      await writeModule(join(own.dir, 'functions', 'counter.ts'), counterModule(1))
      await own.writeConfig(config)
      expect((await own.reload()).ok).toBe(true)
      const holding = () => request(`${own.url}/counter?hold=${encodeURIComponent(holdUrl)}`, { headers: { 'x-request-id': 'retired-at-shutdown' } }).catch((err: Error) => err)
      const { inFlight } = await retireWhileHeld(own, config, holding, 2) // retired: it waits for its invocation
      await own.shutdown()
      expect(await inFlight).toBeInstanceOf(Error) // its connection cut at shutdown_timeout
      const db = new DatabaseSync(join(logDir, 'audit.db'), { readOnly: true })
      try {
        // Recorded, not lost (before the fix: no row). As cut (499) when the drain's cut reaches the
        // request first, as the pool's failure (502) when closing the pool does: the two race on a
        // loaded host, and the client saw a cut connection either way.
        const row = db.prepare("SELECT status, upstream FROM audit_records WHERE request_id = 'retired-at-shutdown'").get() as { status: number; upstream: string } | undefined
        expect(row?.upstream).toBe('function:counter')
        expect([499, 502]).toContain(row?.status)
      } finally {
        db.close()
      }
    } finally {
      held.splice(0).forEach((res) => res.end('go'))
      await rm(own.dir, { recursive: true, force: true })
      await rm(logDir, { recursive: true, force: true })
    }
  })
})
