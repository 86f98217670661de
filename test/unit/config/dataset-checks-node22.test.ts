// Found by an operations probe on Node 22 (package.json engines: >=22; docs/production.md: "Node.js
// 22 or later"): `bouncer check` on any config with a masked dataset column and a parameter ended
// in "internal error: RegExp.escape is not a function", and so did serve: RegExp.escape is Node 24's.
// Here Node 22 is stood in for by taking RegExp.escape away while the checks run.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { loadConfigText } from '../../../src/config/index.ts'

const regExp = RegExp as unknown as { escape?: unknown }
const escape = regExp.escape
beforeAll(() => {
  delete regExp.escape
})
afterAll(() => {
  regExp.escape = escape
})

it('checks a masked column against the parameters without RegExp.escape', () => {
  const text = [
    'datasources:',
    '  - { name: wh, type: sqlite, path: ./x.db }',
    'routes:',
    '  - id: d',
    '    path: /d',
    '    methods: [GET]',
    '    dataset:',
    '      source: wh',
    '      sql: "SELECT id FROM t WHERE region = :region AND customer_email = :email"',
    '      params: { region: { type: string }, email: { type: string } }',
    '      masks: { customer_email: { with: redact } }',
    '',
  ].join('\n')
  const loaded = loadConfigText(text, 'bouncer.yaml', {})
  expect(loaded.diagnostics.filter((d) => d.severity === 'warning').map((d) => d.message)).toContain(
    'parameter "email" is compared with the masked column "customer_email" in the sql: a caller who sees it masked can test guesses of its values by whether rows come back',
  )
  expect(loaded.config).toBeDefined()
})
