// Found by an adversarial probe: a function's `environment` takes any name of letters, digits and _,
// so `__proto__` passed check, and the handler's process.env did not have it: the config's schema
// (zod's record) leaves that key out without a word, as an object literal would take it for the
// prototype. A key of that name is refused, with its line; `constructor` and the like are kept.
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

const FILE = fileURLToPath(new URL('../../fixtures/functions/bouncer.yaml', import.meta.url))

const ROUTE = 'routes:\n  - { id: r, path: /r, function: echo, public: true }\n'

function check(text: string) {
  const loaded = loadConfigText(`${text}${ROUTE}`, FILE, {})
  return { loaded, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

it('refuses __proto__ as a function environment variable, which would be dropped, and keeps constructor', () => {
  const { loaded, lines } = check('functions:\n  - name: echo\n    module: ./echo.ts\n    environment:\n      TABLE: reports\n      __proto__: from-the-config\n')
  expect(loaded.config).toBeUndefined()
  expect(lines).toEqual([expect.stringMatching(/^bouncer\.yaml:6:7: functions\[0\]\.environment\.__proto__: .*__proto__/)])
})

it('keeps every other name, constructor and hasOwnProperty too', () => {
  const { loaded, lines } = check('functions:\n  - name: echo\n    module: ./echo.ts\n    environment:\n      constructor: built\n      hasOwnProperty: own\n')
  expect(lines).toEqual([])
  expect(Object.entries(loaded.config?.functions[0]?.environment ?? {})).toEqual([['constructor', 'built'], ['hasOwnProperty', 'own']])
})

it('refuses a key named __proto__ wherever a map of names stands, an upstream\'s headers too', () => {
  const { loaded, lines } = check('upstreams:\n  - name: api\n    url: http://127.0.0.1:9500\n    headers:\n      __proto__: x\nfunctions:\n  - { name: echo, module: ./echo.ts }\n')
  expect(loaded.config).toBeUndefined()
  expect(lines).toEqual([expect.stringMatching(/^bouncer\.yaml:5:7: upstreams\[0\]\.headers\.__proto__: /)])
})
