// The audit worker's scheduling priority (Linux): with batched durability it runs at nice +5 while it
// keeps up, so its batches weigh less on a core it shares with the request thread; with sync
// durability a response waits for its commit, so it keeps the request thread's priority. Read from
// /proc, as `top -H` shows it. (Falling behind and catching up: test/unit/audit/worker-priority.test.ts.)
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

/** Each thread of a process and its nice value (field 19 of /proc/PID/task/TID/stat); the request thread's id is the pid. */
function threadsOf(pid: number): { tid: number; nice: number }[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // past "PID (comm) "
      return [{ tid: Number(tid), nice: Number(fields[16]) }]
    } catch {
      return [] // the thread ended meanwhile
    }
  })
}

/** The worker's nice value is clamped at 19: a runner already that low leaves nothing to see. */
const ownNice = process.platform === 'linux' ? (threadsOf(process.pid).find((t) => t.tid === process.pid)?.nice ?? 0) : 0

async function serveWith(durability: 'batched' | 'sync') {
  const file = join(dir, `${durability}.yaml`)
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0' },
    // Batched, the one request's record waits a minute for its batch: the worker, lowered as it
    // starts, is seen before it takes one. On a loaded machine (CI, three files at once) a batch taken
    // 500 ms late rightly put it back at the request thread's priority before the test looked (it
    // does so while it falls behind: test/unit/audit/worker-priority.test.ts).
    audit: { sinks: [{ type: 'sqlite', path: join(dir, `${durability}.db`) }], durability, spill_dir: join(dir, `spill-${durability}`), ...(durability === 'batched' ? { flush_interval: '60s' } : {}) },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
  }))
  const gw = await startServe(['--config', file])
  const res = await request(`${gw.url}/x`)
  await res.body.dump()
  expect(res.statusCode).toBe(200)
  return gw
}

describe.runIf(process.platform === 'linux' && ownNice <= 14)('the audit worker thread', () => {
  it('runs five nice levels below the request thread with batched durability', async () => {
    const gw = await serveWith('batched')
    try {
      const pid = gw.child.pid as number
      const main = threadsOf(pid).find((t) => t.tid === pid)
      expect(main?.nice).toBe(ownNice)
      // One thread, the audit worker, five levels lower; every other (V8's, libuv's) at the request thread's.
      await waitFor(() => threadsOf(pid).some((t) => t.nice === ownNice + 5), 'a thread at nice +5')
      expect(threadsOf(pid).filter((t) => t.nice !== ownNice).map((t) => t.nice)).toEqual([ownNice + 5])
    } finally {
      await gw.stop()
    }
  })

  it('keeps the request thread priority with sync durability, where responses wait for its commits', async () => {
    const gw = await serveWith('sync')
    try {
      // The answer waited for its record's commit: the worker is running, past where it would yield.
      expect(threadsOf(gw.child.pid as number).map((t) => t.nice).filter((nice) => nice !== ownNice)).toEqual([])
    } finally {
      await gw.stop()
    }
  })
})
