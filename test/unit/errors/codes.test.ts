// The README's error table and the code list cannot drift apart (as fastify checks its docs).
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES } from '../../../src/errors/index.ts'

const README = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
const ERRORS_SECTION = README.slice(README.indexOf('\n## Errors'), README.indexOf('\n## ', README.indexOf('\n## Errors') + 1))

describe('error codes', () => {
  it.each(Object.entries(ERROR_CODES))('%s appears in the README error table with its status', (code, { status }) => {
    const row = ERRORS_SECTION.split('\n').find((line) => line.startsWith(`| \`${code}\` |`))
    expect(row, `no README table row for ${code}`).toBeDefined()
    expect(row).toContain(`| ${status} |`)
  })

  it('the README lists no code that does not exist', () => {
    const listed = [...ERRORS_SECTION.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1])
    expect(listed.length).toBeGreaterThan(0)
    for (const code of listed) expect(Object.keys(ERROR_CODES)).toContain(code)
  })
})
