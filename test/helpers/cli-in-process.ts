// Runs a `bouncer` command in the test's own process: main(argv) from src/cli/main.ts, as
// bin/bouncer.js calls it, with what the command writes captured, its environment and stdin given,
// and its exit code read. A child process (runCli) spent ~0.6 s of CPU loading the CLI's modules
// for each run, 1.4 s for `explain` (~300 s of CPU over a test run, 2026-12-07), where the test
// process has most of them loaded already. For the command's output, exit code and effects; what
// is the process's own (bin/bouncer.js: the Node version check, the compile cache, the warning
// filter, an early SIGHUP; signals; another account) is tested with runCli.
import { Console } from 'node:console'
import { Readable, Writable } from 'node:stream'
import { main } from '../../src/cli/main.ts'
import type { CliResult } from './cli.ts'

/** A command that calls process.exit here would end the test process: it is thrown instead. */
class ExitCalled extends Error {
  readonly code: number
  constructor(code: number) {
    super(`process.exit(${code})`)
    this.code = code
  }
}

let queue: Promise<unknown> = Promise.resolve()

/**
 * `bouncer …args`, one at a time (they share the process's stdout, env and exit code). `env` is
 * laid over process.env for the run, as runCli's child gets it; `input` is stdin (empty if not given).
 */
export function runCliInProcess(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<CliResult> {
  const run = queue.then(() => runNow(args, options))
  queue = run.catch(() => {})
  return run
}

async function runNow(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string }): Promise<CliResult> {
  const [command] = args
  if (command === 'serve' || command === 'demo') throw new Error(`runCliInProcess: ${command} runs until stopped; use startServe or runCli`)
  let stdout = ''
  let stderr = ''
  const capture = (append: (text: string) => void) => new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      append(chunk.toString())
      callback()
    },
  })
  const out = capture((text) => (stdout += text))
  const err = capture((text) => (stderr += text))
  const stdin = Object.assign(Readable.from(options.input === undefined || options.input === '' ? [] : [Buffer.from(options.input)]), { isTTY: undefined })

  const streams = ['stdin', 'stdout', 'stderr'].map((name) => [name, Object.getOwnPropertyDescriptor(process, name)] as const)
  const savedEnv = new Map(Object.keys(options.env ?? {}).map((name) => [name, process.env[name]]))
  const savedConsole = globalThis.console
  const savedExit = process.exit
  const savedExitCode = process.exitCode
  const savedCwd = process.cwd()
  const fakes: Record<string, NodeJS.ReadableStream | NodeJS.WritableStream> = { stdin, stdout: out, stderr: err }
  for (const [name] of streams) Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => fakes[name] })
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
  globalThis.console = new Console({ stdout: out, stderr: err })
  process.exit = ((code?: number | string | null) => {
    throw new ExitCalled(Number(code ?? process.exitCode ?? 0))
  }) as typeof process.exit
  process.exitCode = undefined
  if (options.cwd !== undefined) process.chdir(options.cwd)
  let code: number
  try {
    await main(['node', 'bouncer', ...args])
    code = Number(process.exitCode ?? 0)
  } catch (thrown) {
    if (!(thrown instanceof ExitCalled)) throw thrown
    code = thrown.code
  } finally {
    process.chdir(savedCwd)
    process.exitCode = savedExitCode
    process.exit = savedExit
    globalThis.console = savedConsole
    for (const [name, value] of savedEnv) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
    for (const [name, descriptor] of streams) if (descriptor) Object.defineProperty(process, name, descriptor)
  }
  return { code, stdout, stderr }
}
