// Found by an adversarial probe: `environment: {TZ: Europe/Berlin}` on a function (as a Lambda
// function ported here would have it) puts TZ in its handler's process.env, but its dates stay in
// the gateway's time zone: a worker thread shares the gateway's process, whose zone is read once
// from the gateway's own TZ (setting process.env.TZ in the handler does nothing either). Check
// said nothing, and the handler's local times were silently off; it now warns.
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const FILE = fileURLToPath(new URL('../../fixtures/functions/bouncer.yaml', import.meta.url))
const ROUTE = 'routes:\n  - { id: r, path: /r, function: echo, public: true }\n'

function check(environment: string) {
  const loaded = loadConfigText(`functions:\n  - name: echo\n    module: ./echo.ts\n    environment: ${environment}\n${ROUTE}`, FILE, {})
  return { loaded, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

it('warns that TZ in a function\'s environment does not change its handler\'s time zone', () => {
  const { loaded, lines } = check('{ TZ: Europe/Berlin }')
  expect(loaded.config).toBeDefined()
  expect(lines).toEqual([expect.stringMatching(/^bouncer\.yaml:4:\d+: warning: functions\[0\]\.environment\.TZ: .*time zone.*gateway/)])
})

it('says nothing of other variables', () => {
  expect(check('{ TABLE: reports, LANG: C.UTF-8 }').lines).toEqual([])
})
