// `bouncer audit --json` read every record its --limit allowed before writing its first line: an
// export of a month (`--since 30d --limit 1000000 --json > month.ndjson`) held the whole month in
// memory, ~4 KB a record at the largest records a client can cause. It now reads a page at a time,
// as the console's export does (audit/pages.ts): here 25,000 such records (~100 MB) pass through a
// command whose heap may not grow past 64 MB.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { copyFirstRecord, waitForAuditRecord } from '../helpers/audit.ts'
import { BIN } from '../helpers/cli.ts'
import { startTestGateway } from '../helpers/gateway.ts'

const RECORDS = 25_000
let dir: string
let config: string
let firstId: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-paged-'))
  const log = join(dir, 'audit.db')
  const settings = {
    audit: { sinks: [{ type: 'sqlite', path: log }] },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  }
  config = join(dir, 'bouncer.yaml')
  await writeFile(config, stringify(settings))
  const gateway = await startTestGateway(settings)
  try {
    const res = await request(`${gateway.url}/${'a'.repeat(2_100)}`, { headers: { 'user-agent': 'u'.repeat(600) } })
    await res.body.dump()
    firstId = (await waitForAuditRecord(log, String(res.headers['x-request-id']))).id
  } finally {
    await gateway.close()
  }
  copyFirstRecord(log, RECORDS)
}, 120_000)

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it('writes a large --json search a page at a time, in order, within a small heap', async () => {
  const child = spawn(process.execPath, ['--max-old-space-size=64', BIN, 'audit', '--json', '--limit', '100000', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = once(child, 'exit')
  let lines = 0
  let first = ''
  let last = ''
  let ordered = true
  let previousTime = Infinity
  for await (const line of createInterface({ input: child.stdout })) {
    const record = JSON.parse(line) as { id: string; time: string }
    if (lines === 0) first = record.id
    last = record.id
    const time = Date.parse(record.time)
    if (time > previousTime) ordered = false
    previousTime = time
    lines += 1
  }
  const [code] = (await exited) as [number | null]
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
  expect(lines).toBe(RECORDS)
  expect(first).toBe(firstId) // the newest
  expect(last).toBe(`${firstId}-${RECORDS}`) // the oldest
  expect(ordered).toBe(true)
}, 120_000)

it('stops at --limit across pages', async () => {
  const child = spawn(process.execPath, [BIN, 'audit', '--json', '--limit', '2500', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(child, 'exit')
  const ids = new Set<string>()
  for await (const line of createInterface({ input: child.stdout })) ids.add((JSON.parse(line) as { id: string }).id)
  expect((await exited)[0]).toBe(0)
  expect(ids.size).toBe(2_500) // none twice
  expect(ids.has(`${firstId}-2500`)).toBe(true)
  expect(ids.has(`${firstId}-2501`)).toBe(false)
}, 60_000)
