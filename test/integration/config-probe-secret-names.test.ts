// `${secret:NAME}` takes any text as NAME in the config, while a store holds only names of letters,
// digits and . _ - (SECRET_NAME). The file store reads none outside its folder, but check told the
// operator `${secret:../outside}` had "no file …/outside" where that file was, and `${secret:}`
// "no file" naming the folder itself: the name is what is wrong, and check now says so.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-secret-names-'))
  await mkdir(join(dir, 'secrets'))
  await writeFile(join(dir, 'secrets', 'api-token'), 'secret-in-the-store')
  await writeFile(join(dir, 'outside'), 'a file that is not a secret')
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it('bouncer check says a secret name no store can hold is not a name', async () => {
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    secrets: { store: { type: 'file', dir: join(dir, 'secrets') } },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9', headers: { 'X-Good': '${secret:api-token}', 'X-Outside': '${secret:../outside}' } }],
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true }],
  }))
  const result = await runCliInProcess(['check', '--config', file])
  expect(result.stderr).toBe(`${file}:10:18: upstreams[0].headers.X-Outside: "../outside" is not a valid secret name (letters, digits and . _ -)\n`)
  expect(result.code).toBe(1)
})
