// Found by an adversarial probe (helper). `bouncer check` on a flat (not nested) config whose one list holds many bad entries must not
// claim the file nests too deeply: the problems it reports must be the real ones.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-check-many-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('bouncer check with very many problems', () => {
  it('a route with 150,000 invalid methods is reported as invalid methods, not as nesting too deeply', async () => {
    const file = join(dir, 'wide.yaml')
    const wide = `[${Array.from({ length: 150_000 }, () => '1').join(',')}]`
    await writeFile(file, `upstreams:\n  - {name: api, url: "http://127.0.0.1:9"}\nroutes:\n  - {id: r, path: /x, upstream: api, public: true, methods: ${wide}}\n`)
    const result = await runCli(['check', '--config', file], { timeout: 60_000 })
    expect(result.code).toBe(1)
    expect(result.stderr.split('\n')[0]).not.toMatch(/nests too deeply/)
    expect(result.stderr).toMatch(/routes\[0\]\.methods/)
  }, 90_000)
})
