// Found by an operations probe: `npm pack` shipped the sources, the tests and the benchmarks but not
// dist/ (ignored by git, and no "files" or prepack build), while bin/bouncer.js runs dist/ wherever
// it is installed as a package (Node does not strip types inside node_modules): every command of an
// install from the tarball ended in "cannot run TypeScript sources here". Now the tarball is built
// by prepack and holds what the package runs: bin/, dist/, schema/ and the console's files.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli, startServe, type ServeProcess } from '../helpers/cli.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
let dir: string
let installed: string
let serve: ServeProcess | undefined

async function run(command: string, args: string[], cwd: string): Promise<string> {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}:\n${stderr}`)
  return stdout
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-tarball-'))
  const [packed] = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', dir], ROOT)) as Array<{ filename: string }>
  // Laid out as `npm install bouncer-X.Y.Z.tgz` lays it out, its dependencies beside it.
  installed = join(dir, 'app', 'node_modules', 'bouncer')
  await mkdir(installed, { recursive: true })
  await run('tar', ['-xzf', join(dir, (packed as { filename: string }).filename), '-C', installed, '--strip-components=1'], dir)
  await symlink(join(ROOT, 'node_modules'), join(installed, 'node_modules'))
}, 240_000)

afterAll(async () => {
  await serve?.stop()
  await rm(dir, { recursive: true, force: true })
})

it('installs from the tarball and runs: version, check, serve with the console', async () => {
  const bin = join(installed, 'bin', 'bouncer.js')
  const version = await runCli(['--version'], { bin })
  expect(version.stderr).toBe('')
  expect(version.stdout).toMatch(/^bouncer \d+\.\d+\.\d+ \(node v/)

  const config = join(dir, 'bouncer.yaml')
  await writeFile(config, stringify({
    server: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0', token: 'package-tarball-admin-token-0123' },
    audit: { sinks: [] },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  }))
  expect(await runCli(['check', '--config', config], { bin })).toEqual({ code: 0, stdout: 'ok\n', stderr: '' })
  expect((await runCli(['schema'], { bin })).code).toBe(0)

  serve = await startServe(['--config', config], { bin })
  const page = await request(`${serve.adminUrl}/`)
  expect(page.statusCode).toBe(200)
  expect(await page.body.text()).toContain('<!doctype html>')
})
