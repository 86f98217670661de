// Found by an adversarial probe: a worker whose module could not be loaded kept its failed load for
// good, and answered every later call 502 from it. A worker started while the module's file was
// briefly absent (a deploy that replaces files, as a timed-out call's replacement starts at once)
// failed every call after the file was back, until a reload or a restart. Lambda discards an
// environment whose init failed; so does the pool now, and the next call loads the module again.
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts'
import { waitForText } from '../helpers/wait.ts'

let dir: string
let gw: TestGateway

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-fd2-load-'))
  await writeFile(join(dir, 'fn.mjs'), "export async function handler(event) {\n  if (event.queryStringParameters?.hang) await new Promise(() => {})\n  return { ok: true }\n}\n")
  gw = await startTestGateway({
    functions: [{ name: 'fn', module: join(dir, 'fn.mjs'), concurrency: 1, timeout: '300ms' }],
    routes: [{ id: 'fn', path: '/fn', function: 'fn', public: true }],
  })
})
afterAll(async () => {
  await gw?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

async function status(path: string): Promise<number> {
  const res = await request(`${gw.url}${path}`)
  await res.body.dump()
  return res.statusCode
}

it('a worker that could not load the module while its file was away loads it again once it is back', async () => {
  expect(await status('/fn')).toBe(200)
  await rename(join(dir, 'fn.mjs'), join(dir, 'fn.mjs.away'))
  // Times out: its worker is replaced at once, and the new one finds no file.
  expect(await status('/fn?hang=1')).toBe(504)
  await waitForText(() => gw.logs.join(''), 'its module could not be loaded')
  expect(await status('/fn')).toBe(502)
  await rename(join(dir, 'fn.mjs.away'), join(dir, 'fn.mjs'))
  expect(await status('/fn')).toBe(200)
})
