// Runs a `bouncer` command in the test's own process: main(argv) from src/cli/main.ts, as
// bin/bouncer.js calls it, with what the command writes captured, its environment and stdin given,
// and its exit code read. A child process (runCli) spent ~0.6 s of CPU loading the CLI's modules
// for each run, 1.4 s for `explain` (~300 s of CPU over a test run, 2026-12-07), where the test
// process has most of them loaded already. For the command's output, exit code and effects; what
// is the process's own (bin/bouncer.js: the Node version check, the compile cache, the warning
// filter, an early SIGHUP; signals; another account) is tested with runCli, and so is what only a
// process's end shows: a command that leaves a handle open (a timer, a socket) returns here, where
// its process would not have ended.
import { Console } from 'node:console'
import { Readable, Writable } from 'node:stream'
import { main } from '../../src/cli/main.ts'
import type { CliResult } from './cli.ts'

let queue: Promise<unknown> = Promise.resolve()

/**
 * `bouncer …args`, one at a time (they share the process's stdout, env and exit code). `env` is
 * laid over process.env for the run, as runCli's child gets it; `input` is stdin (empty if not given).
 * A run past `timeout` (20 s, runCli's) is refused with everything put back, so the next run and the
 * next file in this process start clean; the command itself may still be running.
 */
export function runCliInProcess(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeout?: number } = {}): Promise<CliResult> {
  const run = queue.then(() => runNow(args, options))
  queue = run.catch(() => {})
  return run
}

async function runNow(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeout?: number }): Promise<CliResult> {
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
  // Node prints a process warning (a deprecation, MaxListenersExceeded, TimeoutOverflowWarning) on
  // the process's own stderr, which a child's caller reads: here it goes to the command's stderr.
  const warned = (warning: Error) => (stderr += `${warning.name}: ${warning.message}\n`)

  const streams = ['stdin', 'stdout', 'stderr'].map((name) => [name, Object.getOwnPropertyDescriptor(process, name)] as const)
  const savedEnv = new Map(Object.keys(options.env ?? {}).map((name) => [name, process.env[name]]))
  const savedConsole = globalThis.console
  const savedExit = process.exit
  const savedExitCode = process.exitCode
  const savedCwd = process.cwd()
  let exitCalled: number | undefined
  let timer: NodeJS.Timeout | undefined
  const fakes: Record<string, NodeJS.ReadableStream | NodeJS.WritableStream> = { stdin, stdout: out, stderr: err }
  try {
    for (const [name] of streams) Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => fakes[name] })
    for (const [name, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
    globalThis.console = new Console({ stdout: out, stderr: err })
    // Ending the test process is not the command's to do: the call is refused (main reports it as an
    // internal error), and the run with it, to be made with runCli.
    process.exit = ((code?: number | string | null) => {
      exitCalled = Number(code ?? process.exitCode ?? 0)
      throw new Error(`process.exit(${exitCalled}) called in the test process`)
    }) as typeof process.exit
    process.exitCode = undefined
    process.on('warning', warned)
    if (options.cwd !== undefined) process.chdir(options.cwd)
    const timeoutMs = options.timeout ?? 20_000
    await Promise.race([
      main(['node', 'bouncer', ...args]),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`bouncer ${args.join(' ')} did not finish in ${timeoutMs} ms:\n${stdout}\n${stderr}`)), timeoutMs)
      }),
    ])
    await new Promise((resolve) => setImmediate(resolve)) // a warning is emitted on a later tick
    if (exitCalled !== undefined) throw new Error(`runCliInProcess: bouncer ${args.join(' ')} called process.exit(${exitCalled}); run it with runCli`)
    return { code: Number(process.exitCode ?? 0), stdout, stderr }
  } finally {
    clearTimeout(timer)
    process.off('warning', warned)
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
}
