import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { adoptAuditSpills, adoptedSpillDirs, adoptOrphanedSpills, processStamp, releaseAuditSpills, SpillDirInUse } from '../../../src/audit/spill-adopt.ts'
import type { AuditConfig } from '../../../src/config/index.ts'
import { createLogger } from '../../../src/telemetry/index.ts'
import { Writable } from 'node:stream'
import { hostname } from 'node:os'

let base: string
const SINK_FILES = ['sqlite_a.ndjson']
afterEach(() => rmSync(base, { recursive: true, force: true }))

function layout(files: Record<string, string>): void {
  base = mkdtempSync(join(tmpdir(), 'bouncer-spill-adopt-'))
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(base, path, '..'), { recursive: true })
    writeFileSync(join(base, path), text)
  }
}

const tree = () => (readdirSync(base, { recursive: true, encoding: 'utf8' }) as string[]).filter((path) => path.endsWith('.ndjson') || path.endsWith('.json')).map((path) => path.replaceAll('\\', '/')).sort()
/** Where each file went, its time stamp (or an earlier adoption's) as T. */
const labels = (moved: Array<{ to: string }>) => moved.map(({ to }) => relative(base, to).replace(/-\d+\//, '-T/')).sort()

describe('spill files of another number of workers', () => {
  it('two workers: the process\'s own files and those of w3 and up go to w1, never w2\'s, with the chains they leave', () => {
    // A spill's later segments go with it (w3), also when its first was released already (w5).
    layout({ 'sqlite_a.ndjson': '{}\n', 'chain.json': '{}', 'checkpoints.ndjson': '{}\n', 'w2/sqlite_a.ndjson': '{}\n', 'w3/sqlite_a.ndjson': '{}\n', 'w3/sqlite_a.seg-2.ndjson': '{}\n', 'w3/chain.json': '{}', 'w3/empty.ndjson': '', 'w5/sqlite_a.seg-7.ndjson': '{}\n', 'adopted/w4-1/sqlite_a.ndjson': '{}\n' })
    const moved = adoptOrphanedSpills(base, 2, SINK_FILES)
    expect(labels(moved)).toEqual(['w1/adopted/process-T/chain.json', 'w1/adopted/process-T/sqlite_a.ndjson', 'w1/adopted/process-w4-T/sqlite_a.ndjson', 'w1/adopted/w3-T/chain.json', 'w1/adopted/w3-T/sqlite_a.ndjson', 'w1/adopted/w3-T/sqlite_a.seg-2.ndjson', 'w1/adopted/w5-T/sqlite_a.seg-7.ndjson'].sort())
    // Not a spill file of a configured sink (a review: the checkpoint file may live in spill_dir too).
    expect(tree()).toContain('checkpoints.ndjson')
    expect(tree()).toContain('w2/sqlite_a.ndjson')
    expect(tree()).toContain('w3/empty.ndjson')
  })

  it('one process: every worker\'s files, and what they had adopted, go to its own directory', () => {
    layout({ 'w1/sqlite_a.ndjson': '{}\n', 'w2/sqlite_a.ndjson': '{}\n', 'w2/chain.json': '{}', 'w1/adopted/process-1/sqlite_a.ndjson': '{}\n', 'sqlite_a.ndjson': '{}\n', 'wx/sqlite_a.ndjson': '{}\n', 'w2/postgres_gone.ndjson': '{}\n' })
    const moved = adoptOrphanedSpills(base, null, SINK_FILES)
    expect(labels(moved)).toEqual(['adopted/w1-T/sqlite_a.ndjson', 'adopted/w1-process-T/sqlite_a.ndjson', 'adopted/w2-T/chain.json', 'adopted/w2-T/sqlite_a.ndjson'].sort())
    expect(tree()).toContain('sqlite_a.ndjson') // its own, read by its own runner
    expect(tree()).toContain('wx/sqlite_a.ndjson') // not a worker's directory
    expect(tree()).toContain('w2/postgres_gone.ndjson') // a sink no longer configured: left where it is
    expect(adoptedSpillDirs(base)).toHaveLength(3)
  })

  // A review: a second gateway started on the same spill_dir (a blue-green start) moved the live
  // spill file of the first. The directory names its owner; another live one on this host keeps it,
  // and the second start is refused (it went on with the first one's chain: an operations probe).
  it('adopts nothing from a spill_dir another live process on this host owns, and refuses the start', () => {
    layout({ 'w2/stdout.ndjson': '{}\n', 'owner.json': JSON.stringify({ host: hostname(), pid: process.ppid }) })
    const logger = createLogger({ level: 'info', destination: new Writable({ write: (_chunk: Buffer, _e, done) => done() }) })
    const audit = { sinks: [{ type: 'stdout' }], spill_dir: base } as unknown as AuditConfig
    expect(() => adoptAuditSpills(audit, null, logger)).toThrow(SpillDirInUse)
    expect(tree()).toContain('w2/stdout.ndjson')
    // Once that process is gone (a pid no process has), the directory is taken over.
    writeFileSync(join(base, 'owner.json'), JSON.stringify({ host: hostname(), pid: 2 ** 22 + 1 }))
    adoptAuditSpills(audit, null, logger)
    expect(tree()).not.toContain('w2/stdout.ndjson')
    expect(JSON.parse(readFileSync(join(base, 'owner.json'), 'utf8'))).toEqual({ host: hostname(), pid: process.pid, started: processStamp(process.pid) })
  })

  // Found by review: a lock that cannot be taken at all (a file system whose locks do not work, a
  // lock file this user cannot make) skipped owner.json and the adoption too, saying only that
  // nothing could be adopted. The claim then rests on owner.json, and the log says so.
  it('claims the directory by owner.json, and adopts, when its lock cannot be taken at all', () => {
    layout({ 'w2/stdout.ndjson': '{}\n' })
    mkdirSync(join(base, 'owner.lock')) // no SQLite file can be opened there
    const lines: string[] = []
    const logger = createLogger({ level: 'info', destination: new Writable({ write: (chunk: Buffer, _e, done) => done(void lines.push(chunk.toString())) }) })
    const audit = { sinks: [{ type: 'stdout' }], spill_dir: base } as unknown as AuditConfig
    adoptAuditSpills(audit, null, logger)
    releaseAuditSpills(audit)
    expect(lines.join('')).toContain(`cannot lock ${join(base, 'owner.lock')}: the spill directory is claimed by owner.json alone`)
    expect(tree()).not.toContain('w2/stdout.ndjson')
    expect(lines.join('')).not.toContain('could not be adopted')
  })

  // Found by review: a gateway killed (OOM, SIGKILL, a reboot) leaves owner.json; by its next start
  // another process may hold that pid, and the start was refused until someone removed the file.
  it('takes over a spill_dir whose owner\'s pid now names another process, and keeps one whose owner still runs', () => {
    const logger = createLogger({ level: 'info', destination: new Writable({ write: (_chunk: Buffer, _e, done) => done() }) })
    layout({ 'owner.json': JSON.stringify({ host: hostname(), pid: process.ppid, started: processStamp(process.ppid) }) })
    const audit = { sinks: [{ type: 'stdout' }], spill_dir: base } as unknown as AuditConfig
    expect(() => adoptAuditSpills(audit, null, logger)).toThrow(SpillDirInUse)
    writeFileSync(join(base, 'owner.json'), JSON.stringify({ host: hostname(), pid: process.ppid, started: 'an-earlier-boot:12345' }))
    adoptAuditSpills(audit, null, logger)
    expect(JSON.parse(readFileSync(join(base, 'owner.json'), 'utf8'))).toMatchObject({ pid: process.pid })
  })

  it('forgets an adoption once its files are drained, with the chain state that came with them', () => {
    layout({ 'adopted/w2-1/sqlite_a.ndjson': '', 'adopted/w2-1/chain.json': '{}', 'adopted/w2-2/sqlite_a.ndjson': '{}\n' })
    expect(adoptedSpillDirs(base).map((dir) => relative(base, dir))).toEqual(['adopted/w2-2'])
    expect(tree()).toEqual(['adopted/w2-2/sqlite_a.ndjson'])
  })
})
