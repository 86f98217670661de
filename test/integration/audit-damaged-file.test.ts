// Found by an operations probe: `bouncer audit verify` and `bouncer audit` on a damaged SQLite log (a
// truncated copy, a file that is no database, a directory in its place) said "bouncer: internal
// error: file is not a database", which reads as the gateway's bug and names no file. The file's
// state is the user's to see to: one line naming it, exit 1.
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-audit-damaged-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function configFor(name: string): Promise<{ file: string; log: string }> {
  const log = join(dir, `${name}.db`)
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, stringify({
    audit: { sinks: [{ type: 'sqlite', path: log }] },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  }))
  return { file, log }
}

it('names a log file that is no database, for verify and search alike', async () => {
  const { file, log } = await configFor('noise')
  await writeFile(log, randomBytes(4096))
  const line = `bouncer: cannot read the audit log ${log}: file is not a database (damaged, or not an audit log?)\n`
  expect(await runCliInProcess(['audit', 'verify', '--config', file])).toEqual({ code: 1, stdout: '', stderr: line })
  expect(await runCliInProcess(['audit', '--config', file])).toEqual({ code: 1, stdout: '', stderr: line })
})

// SQLite's CANTOPEN was said as "damaged" too (a probe), though the file was never read: the path
// or its access is what is wrong.
it('names a log whose place a directory took, as one that cannot be opened, not a damaged one', async () => {
  const { file, log } = await configFor('directory')
  await mkdir(log)
  const result = await runCliInProcess(['audit', 'verify', '--config', file])
  expect(result.code).toBe(1)
  expect(result.stderr).toMatch(new RegExp(`^bouncer: cannot read the audit log ${log}: .+ \\(it is a directory, not an audit log file\\)\\n$`))
  expect(result.stderr).not.toContain('internal error')
})
