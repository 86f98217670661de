// Issue 15: `bouncer serve` reports its resident memory in /metrics (bouncer_process_resident_memory_bytes),
// and it must be the process's own: what the kernel says (VmRSS in /proc/PID/status), also in a
// process whose worker threads hold memory of their own (the audit worker). So must its CPU time
// (bouncer_process_cpu_seconds_total, /proc/PID/stat), since the process started.
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'

let serve: ServeProcess
let upstream: Server

beforeAll(async () => {
  upstream = createServer((_req, res) => res.end('pong')).listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  serve = await serveConfig((dir) => ({
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` }],
    routes: [{ id: 'ping', path: '/ping', upstream: 'api', public: true }],
  }), { env: { BOUNCER_LOG_LEVEL: 'warn' } })
})
afterAll(async () => {
  await serve?.stop()
  upstream?.close()
})

const kernelRss = (pid: number) => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024

it.runIf(process.platform === 'linux')('reports the resident memory the kernel gives the process, its threads included', async () => {
  for (let i = 0; i < 20; i++) expect((await request(`${serve.url}/ping`)).statusCode).toBe(200)
  const before = kernelRss(serve.child.pid as number)
  const text = await (await request(`${serve.adminUrl}/metrics`)).body.text()
  const after = kernelRss(serve.child.pid as number)
  const reported = Number(/^bouncer_process_resident_memory_bytes (\d+)$/m.exec(text)?.[1])
  // Read between two reads of the kernel's figure: within them, give or take what answering /metrics allocated.
  expect(reported).toBeGreaterThan(Math.min(before, after) * 0.9)
  expect(reported).toBeLessThan(Math.max(before, after) * 1.1)
  expect(reported).toBeGreaterThan(40 * 1024 * 1024) // a Node process with its audit worker: tens of MB, not kB or pages
})

/** User and system CPU seconds the kernel has counted for the process (/proc/PID/stat, in clock ticks of 1/100 s). */
const kernelCpu = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) / 100
}

it.runIf(process.platform === 'linux')('reports the CPU time the kernel gives the process since it started, its start included', async () => {
  // prom-client counted from when it was registered: the start's CPU (loading, compiling the config) was missing.
  const before = kernelCpu(serve.child.pid as number)
  const text = await (await request(`${serve.adminUrl}/metrics`)).body.text()
  const after = kernelCpu(serve.child.pid as number)
  const reported = Number(/^bouncer_process_cpu_seconds_total ([\d.]+)$/m.exec(text)?.[1])
  expect(reported).toBeGreaterThanOrEqual(before - 0.05)
  expect(reported).toBeLessThanOrEqual(after + 0.05)
})
