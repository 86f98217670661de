// Found by an operations probe: the config was read as UTF-8 loosely, so a file saved as Latin-1
// passed `bouncer check` ("ok") and served with U+FFFD where the file had "é" (here an injected
// header's value); and `--config /dev/zero` (or a log given by mistake) was read until the string
// limit, ~500 MB later: "cannot read the config file: Invalid string length".
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-config-bytes-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const config = (team: string) => [
  'audit: { sinks: [] }',
  'upstreams:',
  '  - name: api',
  '    url: http://127.0.0.1:9',
  `    headers: { X-Team: "${team}" }`,
  'routes: [{ id: all, path: /*, upstream: api, public: true }]',
  '',
].join('\n')

it('refuses a config that is not UTF-8, naming the line and column of the first stray byte', async () => {
  const file = join(dir, 'latin1.yaml')
  await writeFile(file, Buffer.from(config('équipe'), 'latin1'))
  expect(await runCliInProcess(['check', '--config', file])).toEqual({ code: 1, stdout: '', stderr: `${file}:5:25: the file is not UTF-8 text (saved in another encoding?): save it as UTF-8\n` })
  const utf8 = join(dir, 'utf8.yaml')
  await writeFile(utf8, config('équipe'))
  expect(await runCliInProcess(['check', '--config', utf8])).toEqual({ code: 0, stdout: 'ok\n', stderr: '' })
})

it('refuses a file past 64 MB without reading it all', async () => {
  const result = await runCliInProcess(['check', '--config', '/dev/zero'])
  expect(result).toEqual({ code: 1, stdout: '', stderr: '/dev/zero:1:1: cannot read the config file: it is larger than 64 MB (a config of 10,000 routes is about 2 MB)\n' })
})
