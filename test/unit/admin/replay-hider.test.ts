// The replay's hider of ${env:} values quoted in a diagnostic, on hostile lines: a piece of a value
// is hidden, escapes inside the quotes are kept whole, and a quoted text of 10 MB (a draft's route
// path) is read without overflowing the stack (the per-character alternation did: a 500 to replay).
import { expect, it } from 'vitest'
import { envFragmentsHider } from '../../../src/admin/replay.ts'

const draft = 'routes: [{ id: r, path: "/${env:SECRET_PATH}", upstream: api }]'
const hide = envFragmentsHider(draft, { SECRET_PATH: 'hunter2-xyzzy' })

it('hides a quoted text that holds a piece of a referenced value, and keeps the others', () => {
  expect(hide('routes[0].path: invalid characters in segment "xx-hunter2" and "plain"'))
    .toBe('routes[0].path: invalid characters in segment "(not shown: it holds text of ${env:SECRET_PATH})" and "plain"')
  expect(hide('a "quoted \\"value\\" here" stays')).toBe('a "quoted \\"value\\" here" stays')
})

it('reads a quoted text of 10 MB without overflowing the stack', () => {
  const long = `"${'a'.repeat(10_000_000)}"`
  expect(hide(`segment ${long}`)).toBe(`segment ${long}`)
  expect(hide(`segment "${'a'.repeat(10_000_000)}xyzz"`)).toBe('segment "(not shown: it holds text of ${env:SECRET_PATH})"')
})
