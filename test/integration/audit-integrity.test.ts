// The audit log's integrity against real faults: a worker that dies, a damaged spill file, a chain
// head that cannot be read, and the newest records deleted (signed checkpoints).
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let upstream: TestUpstream

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-integrity-'))
  upstream = await startUpstream((_req, res) => {
    res.end('ok')
  })
})
afterAll(async () => {
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

const routes = () => ({ upstreams: [{ name: 'api', url: upstream.url }], routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }] })

async function get(url: string): Promise<number> {
  const res = await request(url)
  await res.body.dump()
  return res.statusCode
}

/** One counter or gauge from GET /metrics (0 when it has no sample yet). */
async function metric(adminUrl: string, name: string): Promise<number> {
  const res = await request(`${adminUrl}/metrics`)
  const text = await res.body.text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line ? Number(line.slice(name.length + 1)) : 0
}

function rowsIn(path: string): number {
  try {
    const db = new DatabaseSync(path, { readOnly: true })
    try {
      return (db.prepare('SELECT count(*) AS n FROM audit_records').get() as { n: number }).n
    } finally {
      db.close()
    }
  } catch {
    return 0
  }
}

describe('the audit counters across a worker restart', () => {
  it('add the new worker\'s counts to the old one\'s: /metrics never goes back or stands still', async () => {
    const own = await mkdtemp(join(dir, 'restart-'))
    const db = join(own, 'audit.db')
    const spill = join(own, 'spill')
    const gw = await startTestGateway({ audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: spill, flush_interval: '10ms' }, ...routes() })
    const seen: number[] = []
    const written = async () => {
      const value = await metric(gw.adminUrl, 'bouncer_audit_written_total')
      seen.push(value)
      return value
    }
    try {
      for (let i = 0; i < 5; i++) expect(await get(`${gw.url}/before/${i}`)).toBe(200)
      await waitFor(async () => (await written()) === 5, 'five records written')

      // A real fault kills the worker: it cannot save the chain's state (a directory stands where
      // the state file's temporary copy goes), and the gateway starts a new one.
      await mkdir(join(spill, 'chain.json.tmp'))
      expect(await get(`${gw.url}/lost`)).toBe(200)
      await waitFor(() => gw.logs.some((l) => l.includes('the audit worker stopped: restarting it')), 'the worker to stop')
      await rm(join(spill, 'chain.json.tmp'), { recursive: true })
      await waitFor(async () => (await metric(gw.adminUrl, 'bouncer_audit_dropped_total')) === 1, 'the lost record counted')

      for (let i = 0; i < 3; i++) expect(await get(`${gw.url}/after/${i}`)).toBe(200)
      await waitFor(() => rowsIn(db) === 8, 'eight records in SQLite')
      await waitFor(async () => (await written()) === 8, 'the counter to reach 8 (5 before the restart, 3 after)')
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1] as number)
    } finally {
      await gw.close()
    }
  })
})
