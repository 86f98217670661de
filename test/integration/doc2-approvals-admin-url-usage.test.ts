// README "Exit codes": a malformed argument is a usage error, exit 2. `bouncer approvals list
// --admin-url nope` was sent as it was: exit 1, "the admin API at nope does not answer
// (ERR_INVALID_URL)", as if a gateway were down.
import { expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

it('refuses an --admin-url that is no http(s) URL as a usage error', async () => {
  for (const adminUrl of ['nope', 'ftp://127.0.0.1:9090']) {
    const result = await runCliInProcess(['approvals', 'list', '--admin-url', adminUrl], { env: { BOUNCER_CONFIG: '/nonexistent/bouncer.yaml', BOUNCER_ADMIN_TOKEN: 'example-admin-token-123456' } })
    expect(result.code, adminUrl).toBe(2)
    expect(result.stderr).toContain('--admin-url takes the admin listener\'s http:// or https:// URL')
  }
})
