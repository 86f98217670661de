// Found by an operations probe: `npm pack` shipped the sources, the tests and the benchmarks but not
// dist/ (ignored by git, and no "files" or prepack build), while bin/bouncer.js runs dist/ wherever
// it is installed as a package (Node does not strip types inside node_modules): every command of an
// install from the tarball ended in "cannot run TypeScript sources here". Now the tarball is built
// by prepack and holds what the package runs: bin/, dist/, schema/ and the console's files.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runCli, startServe, type ServeProcess } from '../helpers/cli.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** package.json's engines.node, ">=22.18": the lowest Node the package runs on. */
const LOWEST = /^>=(\d+)\.(\d+)$/.exec((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node)!.slice(1).map(Number) as [number, number]

/** A Node older than engines installed on this machine (a distribution's /usr/bin/node), if any. */
function olderNode(): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    try {
      const [major, minor] = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim().slice(1).split('.').map(Number) as [number, number]
      if (major < LOWEST[0] || (major === LOWEST[0] && minor < LOWEST[1])) return candidate
    } catch {
      // not there
    }
  }
  return undefined
}
const OLDER_NODE = olderNode()
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
  // package.json says Apache-2.0, which asks for its text to go with every copy.
  expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toContain('Apache License\n                           Version 2.0, January 2004')
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

// Found by an adversarial probe: npm installs the package on any Node (engines only warns), and the
// systemd unit runs /usr/bin/node, which on Debian 12 is Node 18. The build then ended in a stack
// trace (ERR_UNKNOWN_BUILTIN_MODULE: node:sqlite) instead of the CLI's one-line reason.
it.skipIf(!OLDER_NODE)('on a Node older than engines, says which Node it needs in one line and exits 1', async () => {
  const child = spawn(OLDER_NODE as string, [join(installed, 'bin', 'bouncer.js'), 'serve'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  expect({ code, stdout }).toEqual({ code: 1, stdout: '' })
  expect(stderr).toMatch(new RegExp(`^bouncer: Node\\.js v[\\d.]+ is too old\\. Use Node\\.js ${LOWEST.join('\\.')} or later \\(24 recommended\\)\\.\\n$`))
})
