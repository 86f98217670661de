// `bouncer healthcheck --timeout 25d` took a duration longer than Node's timers hold: Node warned
// (TimeoutOverflowWarning) and ran the timer for 1 ms, so a ready gateway's check failed at once.
// Like every timer of the config, the timeout is at most 24d; past it, a usage error (exit 2).
import { expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

it('refuses a --timeout longer than a timer holds as a usage error, before reading any config', async () => {
  const result = await runCliInProcess(['healthcheck', '--timeout', '25d'], { env: { BOUNCER_CONFIG: '/nonexistent/bouncer.yaml' } })
  expect(result.code).toBe(2)
  expect(result.stderr).toContain('--timeout: at most 24d')
  expect(result.stderr).not.toContain('TimeoutOverflowWarning')
})
