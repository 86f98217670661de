// The container image's tree, without a container: `npm run build` into a temp directory laid out
// as the image lays out /opt/bouncer (package.json, bin/, dist/, schema/, no src/), with a
// node_modules that holds no development dependency and not openid-client either, and Node told
// not to strip types, so any .ts the build reached for would fail to load. From there, `bouncer
// serve` must answer a request through a real upstream, write its audit log (the worker thread
// runs from dist/ too), report healthy and drain on SIGTERM.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closedPort } from '../helpers/faults.ts'
import { runCli, startServe, type ServeProcess } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> }
/** Needed by the demo only (and, later, browser sign-in): serve must not load it. */
const NOT_FOR_SERVE = ['openid-client']
const NO_TYPE_STRIPPING = ['--no-experimental-strip-types']

let dir: string
let app: string
let upstream: TestUpstream
let serve: ServeProcess | undefined
/** bin/bouncer.js of the build's tree, on a Node that does not strip types. */
let built: { bin: string; nodeArgs: string[] }

async function run(command: string, args: string[], cwd: string): Promise<void> {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`)
}

/** node_modules as `npm ci --omit=dev` leaves it for our code: every package but the dev ones (and NOT_FOR_SERVE). */
async function productionModules(target: string): Promise<void> {
  const source = join(ROOT, 'node_modules')
  const excluded = new Set([...Object.keys(PACKAGE.devDependencies), ...NOT_FOR_SERVE])
  await mkdir(target)
  for (const name of await readdir(source)) {
    if (name === '.bin' || name.startsWith('.')) continue
    if (name.startsWith('@')) {
      await mkdir(join(target, name))
      for (const inner of await readdir(join(source, name))) {
        if (!excluded.has(`${name}/${inner}`)) await symlink(join(source, name, inner), join(target, name, inner))
      }
    } else if (!excluded.has(name)) {
      await symlink(join(source, name), join(target, name))
    }
  }
}


beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-build-'))
  app = join(dir, 'opt-bouncer')
  await mkdir(app)
  await run('npm', ['run', 'build', '--', '--outDir', join(app, 'dist')], ROOT)
  await cp(join(ROOT, 'package.json'), join(app, 'package.json'))
  await cp(join(ROOT, 'bin'), join(app, 'bin'), { recursive: true })
  await cp(join(ROOT, 'schema'), join(app, 'schema'), { recursive: true })
  await productionModules(join(app, 'node_modules'))
  built = { bin: join(app, 'bin', 'bouncer.js'), nodeArgs: NO_TYPE_STRIPPING }
  upstream = await startUpstream()
}, 240_000)

afterAll(async () => {
  await serve?.stop()
  await upstream?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('the compiled build, as the container image runs it', () => {
  it('has no TypeScript to fall back on', () => {
    expect(existsSync(join(app, 'src'))).toBe(false)
    expect(existsSync(join(app, 'dist', 'cli', 'main.js'))).toBe(true)
    expect(existsSync(join(app, 'node_modules', 'typescript'))).toBe(false)
    expect(existsSync(join(app, 'node_modules', 'oidc-provider'))).toBe(false)
  })

  it('prints its version and the config schema', async () => {
    expect(await runCli(['--version'], built)).toEqual({ code: 0, stdout: `bouncer ${PACKAGE.version} (node ${process.version})\n`, stderr: '' })
    expect((await runCli(['schema'], built)).stdout).toBe(readFileSync(join(ROOT, 'schema/bouncer.schema.json'), 'utf8'))
  })

  it('serves a request through a real upstream, records it, reports healthy and drains on SIGTERM', async () => {
    const adminPort = await closedPort()
    const config = join(dir, 'bouncer.yaml')
    const audit = join(dir, 'audit.db')
    await writeFile(config, stringify({
      server: { listen: '127.0.0.1:0' },
      admin: { listen: `0.0.0.0:${adminPort}` },
      upstreams: [{ name: 'api', url: upstream.url }],
      routes: [{ id: 'hello', path: '/hello/*', upstream: 'api', public: true }],
      audit: { sinks: [{ type: 'sqlite', path: audit }], flush_interval: '10ms', spill_dir: join(dir, 'spill') },
    }))
    serve = await startServe(['--config', config], built)
    const res = await request(`${serve.url}/hello/world`)
    expect(res.statusCode).toBe(200)
    expect(JSON.parse(await res.body.text())).toMatchObject({ method: 'GET', url: '/hello/world' })

    expect(await runCli(['healthcheck', '--config', config], built)).toEqual({ code: 0, stdout: `ready: http://127.0.0.1:${adminPort}/readyz\n`, stderr: '' })

    expect(await serve.stop('SIGTERM')).toBe(0)
    serve = undefined
    const records = await runCli(['audit', '--json', '--config', config], built)
    expect(records.code, records.stderr).toBe(0)
    expect(JSON.parse(records.stdout.trim())).toMatchObject({ path: '/hello/world', status: 200, route: 'hello' })
    expect((await runCli(['audit', 'verify', '--config', config], built)).stdout).toMatch(/^ok: 1 record in 1 chain verified\n/)
  })

  // check's parse runs in a child Node, whose program is a file of the build (functions/syntax-check-child.js):
  // that Node is told not to strip types either (NODE_OPTIONS), so only the build's JavaScript could run.
  it('checks function modules\' code in its child Node, from dist/', async () => {
    const config = join(dir, 'functions.yaml')
    await writeFile(join(dir, 'cut.mjs'), 'export async function handler( {\n')
    await writeFile(join(dir, 'good.cjs'), 'module.exports.handler = async () => 1\n')
    await writeFile(config, stringify({
      functions: [{ name: 'cut', module: './cut.mjs' }, { name: 'good', module: './good.cjs' }],
      routes: [{ id: 'cut', path: '/cut', function: 'cut', public: true }, { id: 'good', path: '/good', function: 'good', public: true }],
    }))
    const checked = await runCli(['check', '--config', config], { ...built, env: { NODE_OPTIONS: NO_TYPE_STRIPPING.join(' ') } })
    expect(checked.code, checked.stderr).toBe(1)
    expect(checked.stderr).toBe(`${config}:3:13: functions[0].module: its code does not parse: SyntaxError: Unexpected end of input\n`)
  })

  it('says what the demo needs, rather than failing on a missing module', async () => {
    const demo = await runCli(['demo', '--no-tour'], built)
    expect(demo.code).toBe(1)
    expect(demo.stderr).toBe('bouncer: bouncer demo needs the development dependencies (its OpenID provider): run it from a checkout after npm install\n')
  })
})
