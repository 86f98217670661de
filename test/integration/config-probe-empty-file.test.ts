// A config file with nothing in it (truncated by an editor or `>` mid-write, caught by a SIGHUP or
// server.watch_config; or only comments) was a valid config: `bouncer check` said ok, and a reload
// swapped it in: every route gone (404 for all), and no admin.token, so the admin API that could
// reload again answered 401. A file that holds no config is refused; the running one keeps serving.
import { writeFile } from 'node:fs/promises'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { publicCatchAll, startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const TOKEN = 'empty-file-admin-token-0123456789abcdef'
let upstream: TestUpstream
let gateway: TestGateway

beforeAll(async () => {
  upstream = await startUpstream()
  gateway = await startTestGateway({ admin: { token: TOKEN }, ...publicCatchAll(upstream.url) })
})
afterAll(async () => {
  await gateway.close()
  await upstream.close()
})

const EMPTY = (file: string) => `${file}:1:1: the file holds no config (it is empty, or only comments)`

it('bouncer check refuses an empty file and one of comments only', async () => {
  for (const text of ['', '# routes: to come\n\n']) {
    await writeFile(`${gateway.dir}/empty.yaml`, text)
    const result = await runCliInProcess(['check', '--config', `${gateway.dir}/empty.yaml`])
    expect(result.stderr).toBe(`${EMPTY(`${gateway.dir}/empty.yaml`)}\n`)
    expect(result.code).toBe(1)
  }
})

it('a reload of the file truncated to nothing is refused, and the running config keeps serving', async () => {
  expect((await request(`${gateway.url}/data`)).statusCode).toBe(200)
  await writeFile(gateway.file, '')
  const reload = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  expect(reload.statusCode).toBe(422)
  expect(await reload.body.json()).toEqual({ ok: false, errors: [EMPTY(gateway.file)] })
  expect((await request(`${gateway.url}/data`)).statusCode).toBe(200)
  const again = await request(`${gateway.adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  expect(again.statusCode).toBe(422) // the admin API still takes the token
  await again.body.dump()
})
