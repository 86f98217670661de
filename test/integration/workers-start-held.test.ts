// server.workers: 3 and a start that fails while another worker is held in a synchronous read (its
// master key on a hung file system; a named pipe here, pipe-feeder.ts). The first worker starts
// alone; the other two read their key together: one gets a key that is not one and fails, the other
// waits in its read for ever. terminate() cannot end a thread inside a system call, so the failed
// start waited for its exit for ever, and Node's exit would have waited to join it. Now the start
// gives it a grace, says why it failed, and the process ends (SIGKILL) instead of hanging.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { startPipeFeeder, type PipeFeeder } from '../helpers/pipe-feeder.ts'
import { waitFor } from '../helpers/wait.ts'

const MASTER_KEY = randomBytes(32).toString('base64')

let dir: string
let feeder: PipeFeeder

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-workers-start-held-'))
  feeder = startPipeFeeder(dir, 'master-key', MASTER_KEY)
})

afterAll(async () => {
  await feeder?.stop()
  await rm(dir, { recursive: true, force: true })
})

it('a failed start does not wait for ever on a worker held in a read: it says why, and the process ends', async () => {
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0', workers: 3 },
    admin: { listen: '127.0.0.1:0', token: 'workers-start-held-admin-token' },
    secrets: { store: { type: 'embedded', path: join(dir, 'secrets.db'), master_key: `file:${feeder.path}` } },
    routes: [],
  }))
  // Two readers that open at once may share a pipe (pipe-feeder.ts). Then both wait on the held
  // pipe's gate and nobody reads the bad key: seen as the third pipe never being opened, the gate is
  // let go (one reader gets the key, the other an empty file and fails: a plain failed start), and
  // the start is tried again until each worker read its own pipe.
  for (let attempt = 1; attempt <= 12; attempt++) {
    const readers = feeder.readers
    const hold = Promise.withResolvers<void>()
    feeder.plan = [{ content: MASTER_KEY }, { content: MASTER_KEY, gate: hold.promise }, { content: 'not a master key' }]
    const started = Date.now()
    const run = runCli(['serve', '--config', file], { timeout: 60_000 })
    const separate = await waitFor(() => feeder.readers - readers >= 3, 'each worker reading its own pipe', 10_000).then(() => true, () => false)
    if (!separate) {
      hold.resolve()
      expect((await run).code).toBe(1) // nobody held: the plain failed start
      feeder.plan = []
      console.log(`attempt ${attempt}: two workers shared a pipe; again`)
      continue
    }
    const result = await run
    const took = Date.now() - started
    feeder.plan = [] // the held pipe's gate stays shut: its reader is gone, and afterAll's feeder.stop() lets it go
    console.log(`attempt ${attempt}: ended after ${took} ms`)
    // Why the start failed comes first, as without a held worker.
    expect(result.stderr).toMatch(/secrets\.store: cannot open the secrets store: the master key must be 32 random bytes/)
    expect(result.stderr).toMatch(/bouncer: refusing to start: .* has 1 error/)
    expect(result.stderr).toMatch(/bouncer: worker thread w[23] held in a system call did not end after the failed start: the process ends without it \(SIGKILL\)/)
    expect(result.code).toBeNull() // SIGKILL, not the runner's 60 s timeout
    expect(took).toBeLessThan(30_000)
    return
  }
  throw new Error('every attempt had two workers share a pipe')
}, 300_000)
