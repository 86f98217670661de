// src/upstream/undici-parts.ts requires undici's Pool, Client, connector and errors from their own
// files: the package's index loaded ~110 more modules and Node's own bundled undici at every start
// that imports the upstreams (~100-200 ms of CPU).
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as undici from 'undici'
import { describe, expect, it } from 'vitest'
import { runInFreshProcess } from '../helpers/fresh-process.ts'
import * as parts from '../../src/upstream/undici-parts.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

describe("undici's parts", () => {
  it('are the very objects the package exports: an undici that moves a file fails here', () => {
    expect(parts.Pool).toBe(undici.Pool)
    expect(parts.Client).toBe(undici.Client)
    expect(parts.buildConnector).toBe(undici.buildConnector)
    expect(parts.errors.HeadersTimeoutError).toBe(undici.errors.HeadersTimeoutError)
    expect(parts.errors.UndiciError).toBe(undici.errors.UndiciError)
  })

  it("give a dispatcher the index's request methods in a process that never loads the index (as serve is): a health check's client.request answers", () => {
    const script = `const { Client, Pool } = await import(${JSON.stringify(`${ROOT}/src/upstream/undici-parts.ts`)})
const http = process.getBuiltinModule('node:http')
const server = http.createServer((req, res) => res.writeHead(204).end()).listen(0, '127.0.0.1')
await new Promise((resolve) => server.once('listening', resolve))
const client = new Client('http://127.0.0.1:' + server.address().port)
const res = await client.request({ method: 'GET', path: '/health' })
await res.body.dump()
await client.close()
server.close()
const methods = ['request', 'stream', 'pipeline', 'upgrade', 'connect'].filter((name) => typeof Pool.prototype[name] === 'function')
console.log(JSON.stringify({ status: res.statusCode, methods }))`
    const out = JSON.parse(runInFreshProcess(script)) as unknown
    expect(out).toEqual({ status: 204, methods: ['request', 'stream', 'pipeline', 'upgrade', 'connect'] })
  })

  it("loading the command that serves loads neither undici's index nor Node's bundled undici", () => {
    const script = `await import(${JSON.stringify(`${ROOT}/src/cli/serve.ts`)})
const { createRequire } = await import('node:module')
const index = createRequire(${JSON.stringify(`${ROOT}/package.json`)}).resolve('undici')
console.log(JSON.stringify({ index: Object.hasOwn((await import('node:module')).default._cache, index), bundled: process.moduleLoadList.filter((m) => m.includes('deps/undici')) }))`
    const loaded = JSON.parse(runInFreshProcess(script)) as { index: boolean; bundled: string[] }
    expect(loaded).toEqual({ index: false, bundled: [] })
  })
})
