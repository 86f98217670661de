// The audit worker's scheduling priority (Linux): with batched durability it runs at nice +5 so its
// batches do not stall requests on a shared core; with sync durability a response waits for its
// commit, so it keeps the request thread's priority. Read from /proc, as `top -H` would show it.
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startServe } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let upstream: TestUpstream

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-nice-'))
  upstream = await startUpstream((_req, res) => {
    res.end('ok')
  })
})
afterAll(async () => {
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

/** Each thread of a process: its name and nice value (field 19 of /proc/PID/task/TID/stat). */
function threadsOf(pid: number): { name: string; nice: number }[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // past "PID (comm) "
      return [{ name: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(), nice: Number(fields[16]) }]
    } catch {
      return [] // the thread ended meanwhile
    }
  })
}

async function serveWith(durability: 'batched' | 'sync') {
  const file = join(dir, `${durability}.yaml`)
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0' },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, `${durability}.db`) }], durability, spill_dir: join(dir, `spill-${durability}`) },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
  }))
  const gw = await startServe(['--config', file])
  // The worker is past its start-up (where it sets its priority) once a record of this request is written.
  const res = await request(`${gw.url}/x`)
  await res.body.dump()
  expect(res.statusCode).toBe(200)
  return gw
}

describe.runIf(process.platform === 'linux')('the audit worker thread', () => {
  it('runs five nice levels below the request thread with batched durability', async () => {
    const gw = await serveWith('batched')
    try {
      const pid = gw.child.pid as number
      const main = threadsOf(pid).find((t) => t.name === 'MainThread' || t.name === 'node')
      expect(main).toBeDefined()
      await waitFor(() => threadsOf(pid).some((t) => t.name === 'WorkerThread' && t.nice === (main?.nice ?? 0) + 5), 'an audit worker at nice +5')
      expect(threadsOf(pid).filter((t) => t.nice !== main?.nice).map((t) => t.name)).toEqual(['WorkerThread'])
    } finally {
      await gw.stop()
    }
  })

  it('keeps the request thread priority with sync durability, where responses wait for its commits', async () => {
    const gw = await serveWith('sync')
    try {
      const threads = threadsOf(gw.child.pid as number)
      expect(threads.some((t) => t.name === 'WorkerThread')).toBe(true)
      expect(new Set(threads.map((t) => t.nice)).size).toBe(1)
    } finally {
      await gw.stop()
    }
  })
})
