// Found by an operations probe: package.json (engines ">=22"), the README and docs/production.md
// ("Node.js 22 or later") promised any Node 22, while bin/bouncer.js refuses to run the sources on
// one that cannot strip types ("Use Node.js 22.18 or later") and node:sqlite needs 22.13 without a
// flag. One lowest version, the one bin/bouncer.js names, everywhere it is stated.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const read = (path: string) => readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8')

it('states the same lowest Node.js version in package.json, bin/bouncer.js, the README and docs/production.md', () => {
  const lowest = /Use Node\.js (\d+\.\d+) or later/.exec(read('bin/bouncer.js'))?.[1]
  expect(lowest).toBeDefined()
  expect((JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node).toBe(`>=${lowest}`)
  for (const doc of ['README.md', 'docs/production.md']) {
    const stated = [...read(doc).matchAll(/Node\.js (\d+(?:\.\d+)?)\s+or\s+later/g)].map((m) => m[1])
    expect(stated.length, doc).toBeGreaterThan(0)
    expect(stated, doc).toEqual(stated.map(() => lowest))
  }
})
