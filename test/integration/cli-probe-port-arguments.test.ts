// `bouncer serve --port "$PORT"` with PORT unset (an empty argument) listened on a free port of
// the kernel's choosing, as `--port 0` does, and said nothing; `--port 0x50` listened on 80 and
// `--port 1e3` on 1000 (JavaScript's Number read them). A port is decimal digits, or a usage error.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'

let dir: string
let file: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-port-arguments-'))
  file = join(dir, 'bouncer.yaml')
  await writeFile(file, stringify({
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0', token: 'port-arguments-admin-token-0123456789' },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'r', path: '/r', upstream: 'api', public: true }],
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
  }))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

for (const [flag, value] of [['--port', ''], ['--port', ' '], ['--port', '0x50'], ['--admin-port', '1e3'], ['--admin-port', '9090.0']] as const) {
  it(`serve ${flag} "${value}" is a usage error, before anything listens`, async () => {
    const result = await runCli(['serve', '--config', file, flag, value], { timeout: 15_000 })
    expect(result.stdout).not.toContain('listening on')
    expect(result.stderr).toBe(`bouncer: ${flag} must be a port number (0-65535)\n`)
    expect(result.code).toBe(2)
  })
}
