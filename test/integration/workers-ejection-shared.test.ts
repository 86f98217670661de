// server.workers: passive ejection was each worker's own. With `eject.after: 3` and two workers, the
// worker that ejected a failing target stopped sending to it while the other went on sending it its
// own three tries, and after readmission each worker paid its streak again (an item of stop 39's
// notes). The ejecting worker now tells the others (upstream/eject-share.ts).
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ServeProcess } from '../helpers/cli.ts'
import { waitFor } from '../helpers/wait.ts'
import { onNewConnection, serveWithWorkers } from '../helpers/workers.ts'

interface Target { url: string; server: Server; hits: number }

async function startTarget(status: number): Promise<Target> {
  const target: Target = { url: '', server: createServer(), hits: 0 }
  target.server.on('request', (_req, res) => {
    target.hits++
    res.writeHead(status, { 'content-type': 'text/plain' }).end(String(status))
  })
  await new Promise<void>((resolve) => target.server.listen(0, '127.0.0.1', resolve))
  target.url = `http://127.0.0.1:${(target.server.address() as AddressInfo).port}`
  return target
}

let dir: string
let gateway: ServeProcess
let failing: Target
let good: Target

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-eject-'))
  failing = await startTarget(503)
  good = await startTarget(200)
  ;({ gateway } = await serveWithWorkers(dir, () => ({
    upstreams: [{ name: 'app', targets: [failing.url, good.url], balance: 'round_robin', eject: { after: 3, for: '5m' } }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
  })))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await Promise.all([failing, good].filter(Boolean).map((t) => new Promise((resolve) => t.server.close(resolve))))
  await rm(dir, { recursive: true, force: true })
})

const linesWith = (text: string) => gateway.stderr().split('\n').filter((line) => line.includes(text)).length

describe('server.workers: passive ejection', () => {
  it('a target one worker ejects is out of every worker\'s rotation', async () => {
    // Requests on fresh connections (spread over the workers) until a worker has seen three 503s in a row.
    for (let i = 0; i < 200 && linesWith('ejected after consecutive failures') === 0; i++) await onNewConnection(`${gateway.url}/app/x`)
    expect(linesWith('ejected after consecutive failures')).toBe(1)
    await waitFor(() => linesWith('ejected by another worker') === 1, 'the other worker to take the target out', 10_000)

    const before = failing.hits
    const statuses: number[] = []
    for (let i = 0; i < 20; i++) statuses.push((await onNewConnection(`${gateway.url}/app/x`)).status)
    expect(statuses).toEqual(Array(20).fill(200))
    expect(failing.hits - before).toBe(0)
    expect(linesWith('ejected after consecutive failures')).toBe(1)
  }, 120_000)
})
