// README "Exit codes": a malformed argument is a usage error, exit 2, reported before any config is
// read. `bouncer secrets rekey --new-master-key nope` read the config first: exit 1 with the
// config's problem (no file, or "only an embedded secrets store has a master key"), never what
// --new-master-key takes.
import { expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

it('refuses a --new-master-key that is neither env:NAME nor file:PATH as a usage error, before reading any config', async () => {
  const result = await runCliInProcess(['secrets', 'rekey', '--new-master-key', 'nope'], { env: { BOUNCER_CONFIG: '/nonexistent/bouncer.yaml' } })
  expect(result.code).toBe(2)
  expect(result.stderr).toContain('--new-master-key takes env:NAME or file:PATH')
  expect(result.stderr).not.toContain('/nonexistent/bouncer.yaml')
})
