// A secret standing in an upstream header whose value holds a character outside Latin-1 (a
// password with `€` or an emoji): HTTP cannot carry it, and the gateway rightly refuses the value,
// but the refusal said it held "a line break, NUL or another control character", which it did not,
// sending the operator to look for what is not there.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { loadConfigText } from '../../../src/config/index.ts'
import { loadSecrets } from '../../../src/secrets/open.ts'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bouncer-secret-latin1-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

function startErrors(value: string): string[] {
  writeFileSync(join(dir, 'up-token'), value)
  const text = `upstreams:\n  - { name: up, url: "http://127.0.0.1:9", headers: { Authorization: "Bearer \${secret:up-token}" } }\nsecrets: { store: { type: file, dir: "${dir}" } }\n`
  const { store, diagnostics } = loadSecrets(loadConfigText(text, join(dir, 'bouncer.yaml'), {}), {})
  store?.close()
  return diagnostics.map((d) => d.message)
}

it('a value with a character outside Latin-1 is refused, saying so, never showing the value', () => {
  const errors = startErrors('pass-€-word-0123456789')
  expect(errors).toHaveLength(1)
  expect(errors[0]).toContain('secret "up-token" cannot stand in the header Authorization')
  expect(errors[0]).toMatch(/outside Latin-1/)
  expect(errors[0]).not.toContain('€')
})

it('control: a line break is still named as one', () => {
  expect(startErrors('line-one-0123456789\nline-two')).toEqual([expect.stringContaining('a line break')])
})
