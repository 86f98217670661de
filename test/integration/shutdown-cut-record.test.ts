// Found by an operations probe: a long answer still streaming when SIGTERM's drain ran out of
// server.shutdown_timeout was cut (the client got part of it), and its audit record read as a
// whole answer: status 200, decision allow, no detail. The record now says the shutdown cut it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterEach, expect, it } from 'vitest'
import { startServe, type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { deferred } from '../helpers/wait.ts'

let dir: string | undefined
let gateway: ServeProcess | undefined
let upstream: TestUpstream | undefined
const release = deferred()

afterEach(async () => {
  release.resolve()
  await gateway?.stop('SIGKILL')
  await upstream?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('records an answer cut at shutdown_timeout as cut by the shutdown, not as a whole 200', async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-shutdown-cut-'))
  upstream = await startUpstream(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('first part\n')
    await release.promise
    res.end('never sent\n')
  })
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0', shutdown_timeout: '1s' },
    admin: { listen: '127.0.0.1:0' },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'stream', path: '/stream', upstream: 'api', public: true }],
  }))
  gateway = await startServe(['--config', file])
  const res = await request(`${gateway.url}/stream`)
  expect(res.statusCode).toBe(200)
  const body = res.body[Symbol.asyncIterator]()
  expect(String((await body.next()).value)).toBe('first part\n') // the answer has begun
  const rest = (async () => {
    try {
      for (let chunk = await body.next(); !chunk.done; chunk = await body.next());
      return 'complete'
    } catch {
      return 'cut'
    }
  })()

  expect(await gateway.stop('SIGTERM')).toBe(0)
  gateway = undefined
  expect(await rest).toBe('cut')
  const records = await runCliInProcess(['audit', '--json', '--config', file])
  expect(JSON.parse(records.stdout.trim())).toMatchObject({
    path: '/stream',
    status: 200,
    detail: 'The gateway was shutting down: it cut the answer at server.shutdown_timeout.',
  })
}, 60_000)
