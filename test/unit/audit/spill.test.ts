// A spill file read back for replay, damaged the ways disks and crashes damage files: garbage, a
// line that is JSON but not a record, a last line cut short, and characters across read boundaries.
import { execFileSync, spawn } from 'node:child_process'
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { chain, GENESIS_HASH, hashOf, type AuditRecord, type RecordInput } from '../../../src/audit/record.ts'
import type { StoredRow } from '../../../src/audit/sinks/sink.ts'
import { segmentOf, SPILL_START, spillFor } from '../../../src/audit/spill.ts'

const values = (i: number, userAgent: string | null = null): RecordInput => ({
  id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, time: '2026-11-26T12:00:00.000Z', request_id: `r${i}`, trace_id: null,
  method: 'GET', path: `/x/${i}`, route: 'x', status: 200, decision: 'allow', code: null, detail: null, statement: 'S', issuer: null,
  subject: null, client_id: null, roles: ['a'], source_ip: '127.0.0.1', user_agent: userAgent, upstream: 'api', upstream_status: 200,
  duration_ms: 1.5, bytes_in: 0, bytes_out: 2, limit: null,
})

function rowsOf(count: number, userAgent: (i: number) => string | null = () => null): StoredRow[] {
  const rows: StoredRow[] = []
  let prev = GENESIS_HASH
  for (let i = 1; i <= count; i++) {
    const record: AuditRecord = chain(values(i, userAgent(i)), prev)
    prev = record.hash
    rows.push({ chain: 'c1', seq: i, record })
  }
  return rows
}

const line = (row: StoredRow) => `${JSON.stringify(row)}\n`
const fresh = () => spillFor(mkdtempSync(join(tmpdir(), 'bouncer-spill-')), 'sqlite:/data/audit.db')
const quarantined = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)

describe('replaying a damaged spill file', () => {
  it('quarantines garbage, a JSON line that is not a record and a cut-short last line; the rest replays in order', async () => {
    const spill = fresh()
    const rows = rowsOf(4)
    const garbage = 'x\u0000 not json at all'
    const notARecord = JSON.stringify({ seq: 3, record: { hello: 'world' } })
    const cut = line(rowsOf(5)[4] as StoredRow).slice(0, 60)
    const text = line(rows[0]!) + `${garbage}\n` + line(rows[1]!) + `${notARecord}\n` + line(rows[2]!) + line(rows[3]!) + cut
    writeFileSync(spill.path, text)

    // At start, before anything is appended after it: the cut-short line goes.
    const tail = spill.repairTail()
    expect(tail).toEqual({ file: spill.path, line: 7, offset: Buffer.byteLength(text) - cut.length, reason: expect.stringMatching(/^cut short \(not JSON/) })
    expect(readFileSync(spill.path, 'utf8').endsWith('\n')).toBe(true)

    const { rows: read, next, damaged } = await spill.read(SPILL_START, 100)
    expect(read).toEqual(rows)
    const garbageAt = Buffer.byteLength(line(rows[0]!))
    expect(damaged).toEqual([
      { file: spill.path, line: 2, offset: garbageAt, reason: expect.stringMatching(/^not JSON/) },
      { file: spill.path, line: 4, offset: garbageAt + Buffer.byteLength(`${garbage}\n${line(rows[1]!)}`), reason: 'no chain' },
    ])
    expect(next).toEqual({ segment: 0, offset: spill.size(), line: 7 })

    // Reported once: a second replay (after a failed write, or a restart) skips the blanked lines.
    expect(await spill.read(SPILL_START, 100)).toEqual({ rows, next, damaged: [] })
    expect(spill.size()).toBe(Buffer.byteLength(text) - cut.length)

    const entries = quarantined(spill.quarantinePath)
    expect(entries.map((e) => [e.line, e.text])).toEqual([[7, cut], [2, garbage], [4, notARecord]])
    expect(entries[0]).toMatchObject({ spill: spill.path, offset: tail?.offset, reason: tail?.reason })
  })

  it('names the field that is wrong in a record that is almost one', async () => {
    const spill = fresh()
    const [row] = rowsOf(1) as [StoredRow]
    writeFileSync(spill.path, line({ ...row, record: { ...row.record, status: '200' as unknown as number } }) + line({ ...row, seq: 0 }))
    const { rows, damaged } = await spill.read(SPILL_START, 10)
    expect(rows).toEqual([])
    expect(damaged.map((d) => d.reason)).toEqual(['record.status is missing or not a valid integer', 'no valid seq'])
  })

  it('replays lines spilled before the added fields existed: those read as null, and each record as it was hashed', async () => {
    const spill = fresh()
    writeFileSync(spill.path, readFileSync(new URL('../../integration/fixtures/audit-0.1/spill.ndjson', import.meta.url)))
    const { rows, damaged } = await spill.read(SPILL_START, 100)
    expect(damaged).toEqual([])
    expect(rows.map((row) => row.seq)).toEqual([1, 2, 3, 4, 5, 6, 7])
    for (const { record } of rows) {
      expect(record).toMatchObject({ credential: null, actor: null, tool: null, args_sha256: null, attempts: null, instance: null, upstream_ms: null })
      const { hash, ...rest } = record
      expect(hashOf(rest)).toBe(hash)
    }
  })

  // Found by a probe (upgrades): the first wave (ec73c32) wrote {seq, record}, its one chain in the
  // directory's chain.json; every such line was quarantined ("no chain"), never replayed, and verify
  // then said records 1-60 were deleted.
  it('replays lines the first wave wrote without their chain, in the chain of the directory\'s chain.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-spill-'))
    const spill = spillFor(dir, 'postgres:bouncer')
    const fixture = new URL('../../integration/fixtures/audit-0.1/', import.meta.url)
    writeFileSync(join(dir, 'chain.json'), readFileSync(new URL('chain.json', fixture)))
    const chainless = readFileSync(new URL('spill.ndjson', fixture), 'utf8').trim().split('\n').map((l) => {
      const { chain: _chain, ...line } = JSON.parse(l) as Record<string, unknown>
      return `${JSON.stringify(line)}\n`
    })
    writeFileSync(spill.path, chainless.join(''))
    const { rows, damaged } = await spill.read(SPILL_START, 100)
    expect(damaged).toEqual([])
    const chain = (JSON.parse(readFileSync(new URL('chain.json', fixture), 'utf8')) as { chain: string }).chain
    expect(rows.map((row) => [row.chain, row.seq])).toEqual([1, 2, 3, 4, 5, 6, 7].map((seq) => [chain, seq]))
  })

  it('quarantines lines without their chain when the worker began another chain (chain.json names the new one by then)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-spill-'))
    writeFileSync(join(dir, 'chain.json'), JSON.stringify({ chain: 'the-new-chain', seq: 0, hash: '0'.repeat(64) }))
    const spill = spillFor(dir, 'postgres:bouncer', null)
    writeFileSync(spill.path, `${JSON.stringify({ seq: 1, record: rowsOf(1)[0]!.record })}\n`)
    const { rows, damaged } = await spill.read(SPILL_START, 100)
    expect(rows).toEqual([])
    expect(damaged.map((d) => d.reason)).toEqual(['no chain'])
  })

  it('quarantines a line without its chain where the directory has no chain.json', async () => {
    const spill = fresh()
    writeFileSync(spill.path, `${JSON.stringify({ seq: 1, record: rowsOf(1)[0]!.record })}\n`)
    const { rows, damaged } = await spill.read(SPILL_START, 100)
    expect(rows).toEqual([])
    expect(damaged.map((d) => d.reason)).toEqual(['no chain'])
  })

  it('quarantines an added field of the wrong kind', async () => {
    const spill = fresh()
    const [row] = rowsOf(1) as [StoredRow]
    writeFileSync(spill.path, line({ ...row, record: { ...row.record, attempts: '1' as unknown as number } }) + line({ ...row, record: { ...row.record, status: 2 ** 31 } }))
    const { rows, damaged } = await spill.read(SPILL_START, 10)
    expect(rows).toEqual([])
    expect(damaged.map((d) => d.reason)).toEqual(['record.attempts is missing or not a valid integer or null', 'record.status is missing or not a valid integer'])
  })

  it('keeps a last line that only lacks its newline, and invalid UTF-8 is quarantined as bytes', async () => {
    const spill = fresh()
    const rows = rowsOf(2)
    writeFileSync(spill.path, Buffer.concat([Buffer.from(line(rows[0]!)), Buffer.from([0xff, 0xfe, 0x0a]), Buffer.from(line(rows[1]!).trimEnd())]))
    expect(spill.repairTail()).toBeNull()
    const { rows: read, damaged } = await spill.read(SPILL_START, 10)
    expect(read).toEqual(rows)
    expect(damaged).toMatchObject([{ line: 2, reason: 'not UTF-8' }])
    expect(quarantined(spill.quarantinePath)[0]).toMatchObject({ line: 2, base64: Buffer.from([0xff, 0xfe]).toString('base64') })
  })

  it('splits lines as bytes: a character across the 1 MiB read boundary stays whole, offsets stay exact', async () => {
    const spill = fresh()
    // A record whose user agent runs across the first read's end, split inside a two-byte character.
    const boundary = 1 << 20
    let rows = rowsOf(3, (i) => (i === 2 ? 'é'.repeat(600_000) : 'Agent/1'))
    const runStart = () => Buffer.byteLength(line(rows[0]!)) + Buffer.from(line(rows[1]!)).indexOf(Buffer.from('é'))
    if ((boundary - runStart()) % 2 === 0) rows = rowsOf(3, (i) => (i === 2 ? 'é'.repeat(600_000) : 'Agent/10'))
    expect((boundary - runStart()) % 2).toBe(1)
    for (const row of rows) appendFileSync(spill.path, line(row))
    const first = await spill.read(SPILL_START, 2)
    const rest = await spill.read(first.next, 10)
    expect([...first.rows, ...rest.rows]).toEqual(rows)
    expect([...first.damaged, ...rest.damaged]).toEqual([])
    expect(rest.next).toEqual({ segment: 0, offset: spill.size(), line: 4 })
  })
})

// Found by the operations mends (the checkpoint file's twin): a named pipe put where a spill file
// belongs held a thread of the pool in its open for ever, and every append and the replay behind it.
describe('a named pipe where the spill file belongs', () => {
  it('is refused at the append and at the read, at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-spill-fifo-'))
    const spill = spillFor(dir, 'postgres:bouncer')
    execFileSync('mkfifo', [spill.path])
    try {
      await expect(spill.append(rowsOf(2), false)).rejects.toThrow(`cannot write ${spill.path}: it is not a regular file (a device, a pipe or a socket)`)
      await expect(spill.read(SPILL_START, 10)).rejects.toThrow('it is not a regular file')
    } finally {
      // Without the refusal an open is still waiting in the pool: a reader and a writer let it go.
      const release = spawn('sh', ['-c', `exec 3<>'${spill.path}'; sleep 0.2`])
      await new Promise((resolve) => release.on('exit', resolve))
      await spill.close()
    }
  })
})

describe('a spill in segments', () => {
  it('reads its segments in number order across restarts, after the first was released, and names only its own files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-spill-'))
    const spill = spillFor(dir, 'sqlite:/data/audit.db', undefined, 1_024)
    const rows = rowsOf(40)
    for (const row of rows) await spill.append([row], false) // ~1 KB segments: a few lines each
    const files = readdirSync(dir).filter((f) => f.endsWith('.ndjson')).sort()
    expect(files.length).toBeGreaterThan(10) // seg-2 before seg-10 is the reader's order, not the names'
    const first = await spill.read(SPILL_START, 10)
    expect(first.rows.map((r) => r.seq)).toEqual(rows.slice(0, 10).map((r) => r.seq))
    spill.release(first.next)
    expect(spill.after(SPILL_START)).toBe(spill.size())
    await spill.close()

    // A restart: a new reader from the start finds the segments left, in order.
    const again = spillFor(dir, 'sqlite:/data/audit.db', undefined, 1_024)
    const rest = await again.read(SPILL_START, 100)
    expect(rest.rows.map((r) => r.seq)).toEqual(rows.slice(rest.rows[0]!.seq - 1).map((r) => r.seq))
    expect(rest.rows.at(-1)?.seq).toBe(40)
    expect(rest.rows[0]!.seq).toBeLessThanOrEqual(10) // what was read but not released is read again
    expect(again.after(rest.next)).toBe(0)
    again.clear()
    expect(again.size()).toBe(0)
    expect(readdirSync(dir).filter((f) => f.endsWith('.ndjson'))).toEqual(['sqlite_data_audit.db.ndjson'])

    expect(segmentOf('a.ndjson', 'a.seg-3.ndjson')).toBe(3)
    expect(segmentOf('a.ndjson', 'a.ndjson')).toBe(0)
    for (const other of ['a.seg-03.ndjson', 'a.seg-0.ndjson', 'a.seg-x.ndjson', 'ab.seg-1.ndjson', 'a.seg-1.ndjson.quarantine', 'b.ndjson']) expect(segmentOf('a.ndjson', other)).toBeNull()
  })
})
