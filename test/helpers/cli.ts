// Runs the real `bouncer` command (bin/bouncer.js) as a child process.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'

export const BIN = fileURLToPath(new URL('../../bin/bouncer.js', import.meta.url))

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** `bin` and `nodeArgs`: another tree's bin/bouncer.js (a build), run with these Node flags; `node`: another Node binary (another version). */
interface Launch {
  bin?: string
  nodeArgs?: string[]
  node?: string
}

/** `as`: run by another account (a root test run meets permissions only so; Node drops the supplementary groups too). */
export async function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeout?: number; as?: { uid: number; gid: number } } & Launch = {}): Promise<CliResult> {
  const child = spawn(options.node ?? process.execPath, [...(options.nodeArgs ?? []), options.bin ?? BIN, ...args], {
    env: { ...process.env, ...options.env },
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
    ...options.as,
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  child.stdin.on('error', () => {}) // a command that refuses its input stops reading it: the rest is EPIPE
  child.stdin.end(options.input ?? '')
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout ?? 20_000)
  const [code] = (await once(child, 'exit')) as [number | null]
  clearTimeout(timer)
  await drained(child)
  return { code, stdout, stderr }
}

/**
 * 'exit' can come before the last of the pipes' data: waits for stdout and stderr to close, 2 s at
 * most (a process the command started, still running, may hold them open).
 */
async function drained(child: ChildProcess): Promise<void> {
  const closed = (stream: NodeJS.ReadableStream & { closed?: boolean }) => (stream.closed ? Promise.resolve() : once(stream, 'close').then(() => {}, () => {}))
  let bound: NodeJS.Timeout | undefined
  await Promise.race([
    Promise.all([child.stdout, child.stderr].flatMap((stream) => (stream === null ? [] : [closed(stream)]))),
    new Promise<void>((resolve) => (bound = setTimeout(resolve, 2_000))),
  ])
  clearTimeout(bound)
}

export interface ServeProcess {
  child: ChildProcess
  url: string
  adminUrl: string
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Starts `bouncer serve` and waits until it prints both listener lines. */
/** `startTimeout`: how long it may take to print its listener lines (several workers start slower). */
export async function startServe(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; startTimeout?: number } & Launch = {}): Promise<ServeProcess> {
  const child = spawn(options.node ?? process.execPath, [...(options.nodeArgs ?? []), options.bin ?? BIN, 'serve', ...args], { env: { ...process.env, ...options.env }, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  const urls = await new Promise<{ url: string; adminUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running: three serve processes that started too slowly on a loaded machine outlived
      // their failed test (and the run) by an hour and a half.
      child.kill('SIGKILL')
      reject(new Error(`serve did not start:\n${stdout}\n${stderr}`))
    }, options.startTimeout ?? 20_000)
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
      const gateway = /gateway listening on (\S+)/.exec(stdout)
      const admin = /admin listening on (\S+)/.exec(stdout)
      if (gateway && admin) {
        clearTimeout(timer)
        resolve({ url: gateway[1] as string, adminUrl: admin[1] as string })
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`serve exited with ${code}:\n${stdout}\n${stderr}`))
    })
  })
  return {
    child,
    ...urls,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/**
 * `bouncer serve` on a config given as an object: written as YAML to a directory of its own (also
 * passed to `config` for its files), listening on free loopback ports unless it says otherwise; stop()
 * removes the directory.
 */
export async function serveConfig(config: Record<string, unknown> | ((dir: string) => Record<string, unknown>), options: Parameters<typeof startServe>[1] = {}): Promise<ServeProcess & { dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-serve-'))
  const file = join(dir, 'bouncer.yaml')
  const body = typeof config === 'function' ? config(dir) : config
  // Any port, unless the config names one: a config's `admin: { token }` alone once took the default
  // 127.0.0.1:9090, and failed with EADDRINUSE beside a demo (or another such test).
  const onAnyPort = (section: unknown) => ({ listen: '127.0.0.1:0', ...(section !== null && typeof section === 'object' ? section : {}) })
  await writeFile(file, stringify({ ...body, server: onAnyPort(body.server), admin: onAnyPort(body.admin) }))
  const serve = await startServe(['--config', file], options).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true })
    throw err
  })
  return {
    ...serve,
    dir,
    async stop(signal?: NodeJS.Signals) {
      const code = await serve.stop(signal)
      await rm(dir, { recursive: true, force: true })
      return code
    },
  }
}
