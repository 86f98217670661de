// Found by a probe: `bouncer serve` (one process) whose admin port was taken printed "cannot listen"
// and went on serving on the gateway port, its audit worker and pools running, for good; with
// SO_REUSEPORT elsewhere such a process could take a share of another gateway's connections. What
// started before the failed listen now stops again, and the process ends with 1.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { closedPort } from '../helpers/faults.ts'
import { runCli } from '../helpers/cli.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-port-taken-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

it('one process whose admin port is taken ends with 1, its gateway port let go', async () => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  const adminPort = (taken.address() as AddressInfo).port
  const gatewayPort = await closedPort()
  const file = join(dir, 'taken.yaml')
  try {
    await writeFile(file, stringify({
      server: { listen: `127.0.0.1:${gatewayPort}` },
      admin: { listen: `127.0.0.1:${adminPort}`, token: 'port-taken-admin-token-0123456789' },
      upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
      routes: [{ id: 'r', path: '/r', upstream: 'api', public: true }],
      // An audit worker and its sink: what kept the process running.
      audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
    }))
    const result = await runCli(['serve', '--config', file], { timeout: 30_000 })
    expect(result.stderr).toContain(`bouncer: cannot listen: listen EADDRINUSE: address already in use 127.0.0.1:${adminPort}`)
    expect(result.code).toBe(1) // was killed at the timeout: it never ended
    // The gateway's port is free again: nothing of that process listens on it.
    const again = createServer()
    await new Promise<void>((resolve, reject) => again.once('error', reject).listen(gatewayPort, '127.0.0.1', resolve))
    again.close()
  } finally {
    taken.close()
  }
}, 60_000)
