// Found by an adversarial probe (helper): with server.workers >= 2 and the default memory session store, each worker had its own sessions: a sign-in's callback landing on the other worker failed, and DELETE /api/sessions/{id} ended a session on one worker only.
// `bouncer check` (and serve, which loads the same way) now refuses that config and says what to use.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'
import { runCli } from '../../helpers/cli.ts'

const SIGN_IN = `
issuers:
  - { name: sso, issuer: https://sso.example.com, audiences: [api] }
sign_in:
  issuer: sso
  client_id: web
  client_secret: web-client-secret-0123456789`

function errors(text: string): string[] {
  const loaded = loadConfigText(text, 'bouncer.yaml', {})
  return loaded.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic('bouncer.yaml', d))
}

describe('server.workers with sign-in sessions', () => {
  it.each([
    ['the default store', ''],
    ['store: memory', '\n  session: { store: memory }'],
  ])('refuses more than one worker with %s', (_, session) => {
    const found = errors(`server: { workers: 2 }${SIGN_IN}${session}`)
    expect(found).toHaveLength(1)
    expect(found[0]).toMatch(/sign_in\.session\.store: the memory session store is one per worker: with 2 workers a session signed in on one is unknown to the others and cannot be revoked on all; set sign_in\.session\.store to sqlite or redis \(or server\.workers to 1\)$/)
  })

  it('bouncer check exits 1 and says so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-sessions-check-'))
    try {
      const file = join(dir, 'bouncer.yaml')
      await writeFile(file, `server: { workers: 2 }${SIGN_IN}`)
      const result = await runCli(['check', '--config', file])
      expect(result.code, result.stderr).toBe(1)
      expect(result.stderr).toContain('the memory session store is one per worker')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it.each([
    ['one worker and the memory store', `server: { workers: 1 }${SIGN_IN}`],
    ['two workers and sqlite', `server: { workers: 2 }${SIGN_IN}\n  session: { store: sqlite }`],
    ['two workers and redis', `server: { workers: 2 }${SIGN_IN}\n  session: { store: redis }`],
    ['two workers and no sign-in', 'server: { workers: 2 }'],
  ])('takes %s', (_, text) => {
    expect(errors(text)).toEqual([])
  })
})
