// A SQLite log under a long path (here 318 characters: six nested directories) names its spill file
// after the path: past the 255 bytes a file name may have, no spill could be written, so the records
// of a moment the log was locked (a backup, a sqlite3 shell) were lost, numbered first — a gap in the
// chain. They must spill and reach the log once it is free again, the chain whole.
import { mkdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { searchAudit, verifyAudit } from '../../src/audit/index.ts'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../helpers/wait.ts'

let dir: string
let db: string
let upstream: TestUpstream
let gw: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-probe2-path-'))
  const deep = join(dir, ...Array.from({ length: 6 }, (_, i) => `directory-level-${i}-${'d'.repeat(30)}`))
  mkdirSync(deep, { recursive: true })
  db = join(deep, 'audit.db')
  upstream = await startUpstream(async (_req, res) => {
    res.end('ok')
  })
  gw = await startTestGateway({
    audit: { sinks: [{ type: 'sqlite', path: db }], spill_dir: join(dir, 'spill'), flush_interval: '10ms' },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/*', upstream: 'api', public: true }],
  })
})
afterAll(async () => {
  await gw.close()
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

const records = async () => (await searchAudit({ type: 'sqlite', path: db }, { limit: 50 }).catch(() => [])).length

it('records of a moment its log was locked spill, and reach the log after', async () => {
  expect(db.length).toBeGreaterThan(255)
  await (await request(`${gw.url}/before`)).body.dump()
  await waitFor(async () => (await records()) === 1, 'the first record')
  const lock = new DatabaseSync(db)
  lock.exec('BEGIN EXCLUSIVE')
  try {
    for (let i = 0; i < 5; i++) await (await request(`${gw.url}/locked/${i}`)).body.dump()
    await waitFor(() => gw.logs.some((line) => line.includes('audit sink unavailable')), 'the sink counted away')
  } finally {
    lock.exec('COMMIT')
    lock.close()
  }
  await waitFor(() => gw.logs.some((line) => line.includes('audit sink is back')), 'the spill replayed')
  expect(gw.logs.filter((line) => line.includes('audit records lost')).map((line) => line.slice(0, 300))).toEqual([])
  expect(await records()).toBe(6)
  const verified = await verifyAudit({ type: 'sqlite', path: db })
  expect(verified.problems).toEqual([])
  expect(verified.checked).toBe(6)
})
