import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { adoptedSpillDirs, adoptOrphanedSpills } from '../../../src/audit/spill-adopt.ts'

let base: string
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
  it('two workers: the process\'s own files and those of w3 and up go to w1, never w2\'s', () => {
    layout({ 'sqlite_a.ndjson': '{}\n', 'chain.json': '{}', 'w2/sqlite_a.ndjson': '{}\n', 'w3/sqlite_a.ndjson': '{}\n', 'w3/empty.ndjson': '', 'adopted/w4-1/sqlite_a.ndjson': '{}\n' })
    const moved = adoptOrphanedSpills(base, 2)
    expect(labels(moved)).toEqual(['w1/adopted/process-T/sqlite_a.ndjson', 'w1/adopted/process-w4-T/sqlite_a.ndjson', 'w1/adopted/w3-T/sqlite_a.ndjson'].sort())
    // The chain's state stays with its directory; an empty (drained) file is nobody's to replay.
    expect(tree()).toContain('chain.json')
    expect(tree()).toContain('w2/sqlite_a.ndjson')
    expect(tree()).toContain('w3/empty.ndjson')
  })

  it('one process: every worker\'s files, and what they had adopted, go to its own directory', () => {
    layout({ 'w1/sqlite_a.ndjson': '{}\n', 'w2/sqlite_a.ndjson': '{}\n', 'w1/adopted/process-1/sqlite_a.ndjson': '{}\n', 'sqlite_a.ndjson': '{}\n', 'wx/sqlite_a.ndjson': '{}\n' })
    const moved = adoptOrphanedSpills(base, null)
    expect(labels(moved)).toEqual(['adopted/w1-T/sqlite_a.ndjson', 'adopted/w1-process-T/sqlite_a.ndjson', 'adopted/w2-T/sqlite_a.ndjson'].sort())
    expect(tree()).toContain('sqlite_a.ndjson') // its own, read by its own runner
    expect(tree()).toContain('wx/sqlite_a.ndjson') // not a worker's directory
    expect(adoptedSpillDirs(base)).toHaveLength(3)
  })

  it('forgets an adoption once its files are drained', () => {
    layout({ 'adopted/w2-1/sqlite_a.ndjson': '', 'adopted/w2-2/sqlite_a.ndjson': '{}\n' })
    expect(adoptedSpillDirs(base).map((dir) => relative(base, dir))).toEqual(['adopted/w2-2'])
    expect(tree()).toEqual(['adopted/w2-2/sqlite_a.ndjson'])
  })
})
