// makeDirectories: `mkdir -p` that ends. Node's recursive mkdir never returned for a path under /proc
// (an audit log configured there held the gateway's start at 100% CPU: a probe).
import { spawnSync } from 'node:child_process'
import { existsSync, statSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeDirectories } from '../../../src/collections/index.ts'

const MODULE = fileURLToPath(new URL('../../../src/collections/directories.ts', import.meta.url))

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-directories-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('makeDirectories', () => {
  it('makes every missing directory, and leaves an existing one as it is', () => {
    const deep = join(dir, 'a', 'b', 'c')
    makeDirectories(deep)
    expect(statSync(deep).isDirectory()).toBe(true)
    makeDirectories(deep)
    makeDirectories(dir)
    expect(statSync(deep).isDirectory()).toBe(true)
  })

  it('refuses a file in the place of the directory, or of one above it, with the system\'s code', () => {
    const file = join(dir, 'file')
    writeFileSync(file, 'x')
    expect(() => makeDirectories(file)).toThrow(expect.objectContaining({ code: 'EEXIST' }))
    expect(() => makeDirectories(join(file, 'below'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }))
    expect(existsSync(join(file, 'below'))).toBe(false)
  })

  // In a child process with a time bound: Node's own recursive mkdir spins there for ever, synchronously,
  // which would hold this test's thread past any timeout of the test runner.
  it('refuses a directory under /proc at once, where Node\'s recursive mkdir never returned', () => {
    const script = `import { makeDirectories } from ${JSON.stringify(MODULE)}
try { makeDirectories('/proc/bouncer-no-such-dir/audit'); console.log('made') } catch (err) { console.log(err.code) }`
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 })
    expect(run.signal, 'it ended by itself').toBeNull()
    expect(run.stdout.trim()).toMatch(/^E[A-Z]+$/)
  })
})
