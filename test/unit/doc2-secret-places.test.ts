// The Configuration section's summary of where `${secret:NAME}` may stand left out a function's
// `environment`, a place the config takes (and the Secrets section names): a reader of the
// summary kept a handler's database password in the gateway's own environment instead.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { SECRET_PLACE_NAMES } from '../../src/config/interpolate.ts'

it('names every place a ${secret:NAME} may stand, as bouncer check does', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')
  const summary = /^`\$\{secret:NAME\}` may only stand in one of: ([^\n]*?) \(/m.exec(readme)?.[1] ?? ''
  expect(summary.replaceAll('`', '')).toBe(SECRET_PLACE_NAMES)
})
