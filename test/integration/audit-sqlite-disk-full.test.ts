// A SQLite audit log whose file can grow no more (a full disk; here the process's file size limit,
// `ulimit -f`): the write fails with SQLite's own error, the one the sink runner logs when it goes
// down and spills. SQLite ends the transaction itself on such an error, and the sink's ROLLBACK
// then threw "cannot rollback - no transaction is active" in its place, which told the operator
// nothing about the disk.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { SQLITE } from '../../src/collections/index.ts'
import { runCli } from '../helpers/cli.ts'

const FIXTURE = fileURLToPath(new URL('../fixtures/audit-sink-until-full.ts', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'bouncer-audit-full-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

it('a write to a log that cannot grow fails with SQLite\'s word for it, and the sink still answers', async () => {
  // 1 MB (POSIX counts `ulimit -f` in 512-byte blocks): the log's schema and a few batches fit, then a batch does not.
  // sh sets the limit, then becomes Node running the fixture.
  const { code, stdout, stderr } = await runCli([join(dir, 'audit.db')], { node: 'sh', nodeArgs: ['-c', 'ulimit -f 2048 && exec "$0" "$@"', process.execPath], bin: FIXTURE })
  expect(code, stderr).toBe(0)
  const { failure, pinged } = JSON.parse(stdout) as { failure: { message: string; code: number } | null; pinged: boolean }
  expect(failure, 'no write failed: the limit did not hold').not.toBeNull()
  expect(failure?.message).not.toMatch(/cannot rollback/)
  expect(failure?.message).toMatch(/^(disk I\/O error|database or disk is full)$/)
  expect([SQLITE.IOERR, SQLITE.FULL]).toContain((failure?.code ?? 0) & 0xff)
  expect(pinged).toBe(true)
}, 60_000)
