// Found by an operations probe: a second `bouncer serve` on the same data directory (the same
// audit.spill_dir on this host, e.g. a second config beside the first) started with a warning, read
// the first one's chain.json and went on with the same chain: both numbered their records 1, 2, 3…
// and the SQLite log kept one record of each pair (INSERT OR IGNORE), so half the requests had no
// record while both counted them written and `audit verify` said ok. Now the second is refused.
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterEach, expect, it } from 'vitest'
import { runCli, startServe, type ServeProcess } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

let dir: string | undefined
let first: ServeProcess | undefined
let upstream: TestUpstream | undefined

afterEach(async () => {
  await first?.stop('SIGKILL')
  await upstream?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

it('refuses a second gateway on a spill_dir that a running one owns, and every request of the first keeps its record', async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-spill-owner-'))
  upstream = await startUpstream()
  const config = stringify({
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0' },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: upstream.url }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  })
  const file = join(dir, 'bouncer.yaml')
  const second = join(dir, 'second.yaml')
  await writeFile(file, config)
  await writeFile(second, config)
  first = await startServe(['--config', file])

  const refused = await runCli(['serve', '--config', second], { timeout: 15_000 })
  expect(refused.code).toBe(1)
  expect(refused.stderr).toContain(`audit.spill_dir: ${join(dir, 'spill')} is in use by another gateway on this host (process ${first.child.pid})`)
  expect(refused.stderr).toContain(`bouncer: refusing to start: ${second} has 1 error`)

  for (let i = 0; i < 3; i++) expect((await request(`${first.url}/open`)).statusCode).toBe(200)
  expect(await first.stop('SIGTERM')).toBe(0)
  first = undefined
  const records = await runCliInProcess(['audit', '--json', '--config', file])
  expect(records.stdout.trim().split('\n')).toHaveLength(3)
  expect((await runCliInProcess(['audit', 'verify', '--config', file])).stdout).toMatch(/^ok: 3 records in 1 chain verified\n/)
}, 60_000)

// Found by review: the claim was read-then-write (two gateways starting together both passed it),
// and an owner.json of another hostname was taken for a gateway of another host, gone. A gateway in
// another container on this node writes just that (its pod's hostname, a pid of its namespace) on
// a volume both mount. The claim is now a lock the kernel holds for the running gateway.
it('refuses a gateway on a spill_dir that a running one in another container of this node owns (another hostname in owner.json)', async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-spill-owner-'))
  const spill = join(dir, 'spill')
  const config = stringify({
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0' },
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: spill },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  })
  const file = join(dir, 'bouncer.yaml')
  await writeFile(file, config)
  first = await startServe(['--config', file])
  await writeFile(join(spill, 'owner.json'), JSON.stringify({ host: 'bouncer-7d9f-abcde', pid: 1, started: null }))

  const refused = await runCli(['serve', '--config', file], { timeout: 15_000 })
  expect(refused.code, refused.stderr).toBe(1)
  expect(refused.stderr).toContain(`audit.spill_dir: ${spill} is in use by another gateway (host bouncer-7d9f-abcde, process 1): give each gateway its own spill_dir`)
  expect(await first.stop('SIGTERM')).toBe(0)
  first = undefined
  // Given up with the first gateway's end: the next start takes it.
  const next = await startServe(['--config', file])
  expect(await next.stop('SIGTERM')).toBe(0)
}, 60_000)

it('gives the spill_dir up when it stops, so a later gateway of the same process (a test\'s, the demo\'s) takes it', async () => {
  const gateway = await startTestGateway({
    audit: { sinks: [{ type: 'stdout' }], spill_dir: 'spill' },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'open', path: '/open', upstream: 'api', public: true }],
  })
  dir = gateway.dir
  const owner = join(gateway.dir, 'spill', 'owner.json')
  expect(JSON.parse(await readFile(owner, 'utf8'))).toMatchObject({ pid: process.pid })
  await gateway.shutdown()
  expect(existsSync(owner)).toBe(false)
})
