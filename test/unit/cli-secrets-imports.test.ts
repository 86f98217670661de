// `bouncer secrets` needs the names of the gateway's signing keys, not their signers: it imported
// them from upstream/ and agents/, loading both layers (116 modules, 419 in all) at each start.
// The names live in secrets/ (src/secrets/store.ts), which those layers re-export.
import { execFileSync } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

describe('bouncer secrets', () => {
  it('loads neither the upstreams nor the agents layer', () => {
    const script = `const { registerHooks } = await import('node:module')
const loaded = []
registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context) } })
await import(${JSON.stringify(`${ROOT}/src/cli/secrets.ts`)})
console.log(JSON.stringify(loaded.filter((url) => /\\/src\\/(upstream|agents)\\//.test(url))))`
    const layers = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })) as string[]
    expect(layers).toEqual([])
  })
})
