// Found by a probe: with server.workers: 2 each worker ran secrets.rotation's schedule, so one due
// period ran the hook twice, with two different new values, and the value the upstream had been
// given first was gone from the store. Only the first worker schedules rotation now; the others
// read the new version at their next refresh.
import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { waitFor } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const env = { BOUNCER_MASTER_KEY: randomBytes(32).toString('base64') }
let dir: string
let file: string
let hookLog: string
let gateway: ServeProcess

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-rotation-'))
  hookLog = join(dir, 'hook.log')
  const hook = join(dir, 'hook.sh')
  // Installing the new value at the upstream takes a second: longer than the workers' refresh interval.
  await writeFile(hook, `#!/bin/sh\nv=$(cat)\necho "start $v" >> ${hookLog}\nsleep 1\necho "done $v" >> ${hookLog}\n`)
  await chmod(hook, 0o755)
  // The secret is put (by the CLI, which reads the same config) before the gateway starts.
  const config = {
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: 'env:BOUNCER_MASTER_KEY' }, refresh_interval: '300ms', rotation: { 'api-token': { every: '3s', hook } } },
    upstreams: [{ name: 'app', url: 'http://127.0.0.1:9', headers: { Authorization: 'Bearer ${secret:api-token}' } }],
    routes: [{ id: 'app', path: '/app/*', upstream: 'app', public: true }],
  }
  ;({ gateway, file } = await serveWithWorkers(dir, async () => {
    await writeFile(join(dir, 'bouncer.yaml'), JSON.stringify(config))
    const put = await runCliInProcess(['secrets', 'put', 'api-token', '--config', join(dir, 'bouncer.yaml')], { env, input: 'initial-token-value-0123456789' })
    expect(put.code, put.stderr).toBe(0)
    return config
  }, { env }))
}, 120_000)

afterAll(async () => {
  await gateway?.stop('SIGKILL')
  await rm(dir, { recursive: true, force: true })
})

const hookLines = async () => (await readFile(hookLog, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean)

describe('server.workers: scheduled secret rotation', () => {
  it('runs the hook once a due period, whichever worker, and the store keeps the value before it as previous', async () => {
    await waitFor(async () => (await hookLines()).some((line) => line.startsWith('done')), 'the first rotation', 20_000)
    // Every other worker's refresh ran at least three times while the hook ran: none began another.
    const started = (await hookLines()).filter((line) => line.startsWith('start'))
    expect(started).toHaveLength(1)
    // One new version: the value put first is the previous one (two rotations made it go). The
    // store takes it once the hook has ended, after its last line: waited for (read at once, in
    // this process, it was still version 1 in a CI run).
    let versions = ''
    await waitFor(async () => /^\s*2\b.*current/m.test(versions = (await runCliInProcess(['secrets', 'versions', 'api-token', '--config', file], { env })).stdout), 'version 2 in the store', 10_000)
    expect(versions).toMatch(/^\s*1\b.*previous/m)
  }, 60_000)
})
