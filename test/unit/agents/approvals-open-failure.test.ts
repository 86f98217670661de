// The approvals store is opened at the first call that needs it, and again at the next one when
// that failed: a file that is not a store (or a store SQLite cannot open) kept one open file per
// failed call, so a stream of tool calls ran the process out of them. Counted in /proc/self/fd.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { ApprovalStoreError, openApprovalStore } from '../../../src/agents/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'bouncer-approvals-open-fail-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

it('an approvals store that cannot be opened: named, and every failed open gives its file back', () => {
  const path = join(dir, 'approvals.db')
  writeFileSync(path, 'not a SQLite database, though long enough to be read as one. '.repeat(200))
  expect(() => openApprovalStore(path)).toThrow(ApprovalStoreError)
  const before = readdirSync('/proc/self/fd').length
  for (let i = 0; i < 50; i++) expect(() => openApprovalStore(path)).toThrow(/cannot open the approvals store .*file is not a database/)
  expect(readdirSync('/proc/self/fd').length - before).toBeLessThan(5)
})
