// README "Exit codes": a malformed argument is a usage error, exit 2, reported before any config is
// read. `bouncer approvals list --status weird` read the config and asked the admin API instead:
// exit 1, "cannot read the config file" or the API's 400, never the statuses it takes.
import { expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

it('refuses an unknown --status as a usage error, naming the statuses, before reading any config', async () => {
  const result = await runCliInProcess(['approvals', 'list', '--status', 'weird'], { env: { BOUNCER_CONFIG: '/nonexistent/bouncer.yaml' } })
  expect(result.code).toBe(2)
  expect(result.stderr).toContain('pending, approved, denied, used, expired')
  expect(result.stderr).not.toContain('/nonexistent/bouncer.yaml')
  expect(result.stdout).toBe('')
})
