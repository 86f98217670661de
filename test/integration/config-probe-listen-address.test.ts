// A listen address that `bouncer check` accepts but this host cannot bind: an address of another
// host (EADDRNOTAVAIL, a config copied from another machine), or a host name that does not resolve.
// serve said "bouncer: internal error: …", the words for a bug of bouncer's, where the operator's
// config is what to fix (as a port already taken is "cannot listen: …").
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'
import { runCliInProcess } from '../helpers/cli-in-process.ts'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-listen-address-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function serveWith(name: string, server: string, admin: string) {
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, stringify({
    server: { listen: server },
    admin: { listen: admin, token: 'listen-address-admin-token-0123456789' },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true }],
    audit: { sinks: [{ type: 'sqlite', path: join(dir, `${name}-audit.db`) }], spill_dir: join(dir, `${name}-spill`) },
  }))
  expect((await runCliInProcess(['check', '--config', file])).stdout).toBe('ok\n')
  return runCli(['serve', '--config', file], { timeout: 30_000 })
}

it('an address of another host is the config\'s to fix, not an internal error', async () => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): no host has it.
  const result = await serveWith('other-host', '192.0.2.1:8080', '127.0.0.1:0')
  expect(result.code).toBe(1)
  expect(result.stderr).not.toContain('internal error')
  expect(result.stderr).toContain('bouncer: cannot listen: listen EADDRNOTAVAIL: address not available 192.0.2.1:8080')
}, 40_000)

it('an admin host name that does not resolve says why', async () => {
  // .invalid never resolves (RFC 2606).
  const result = await serveWith('no-such-host', '127.0.0.1:0', 'no-such-host.invalid:9090')
  expect(result.code).toBe(1)
  expect(result.stderr).not.toContain('internal error')
  expect(result.stderr).toContain('bouncer: cannot listen: getaddrinfo ENOTFOUND no-such-host.invalid')
}, 40_000)
