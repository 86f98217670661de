// Child processes for the benchmark, each pinned to a core when the machine has two or more.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { availableParallelism } from 'node:os'
import { readdirSync, readFileSync } from 'node:fs'

export const CORES = availableParallelism()
const HAS_TASKSET = spawnSync('taskset', ['--version']).status === 0

/** Server processes go on the last core, the load generator on core 0 (when there are two). */
export const SERVER_CORE = CORES > 1 ? String(CORES - 1) : null
export const LOAD_CORE = CORES > 1 ? '0' : null

export function pinned(core: string | null, command: string, args: string[]): [string, string[]] {
  return core !== null && HAS_TASKSET ? ['taskset', ['-c', core, command, ...args]] : [command, args]
}

export interface Started {
  child: ChildProcess
  output: () => string
  stop(): Promise<void>
}

/** Starts a process and waits for a line matching `ready` (null: does not wait; the caller probes). */
export async function startProcess(command: string, args: string[], ready: RegExp | null, options: { env?: NodeJS.ProcessEnv; core?: string | null; startTimeoutMs?: number; measured?: boolean } = {}): Promise<Started & { match: RegExpExecArray }> {
  // BENCH_WRAP: a command the measured process runs under (bench/instructions.ts: valgrind), which
  // starts it many times slower; the upstream and other helpers run as they are.
  const wrap = options.measured ? (process.env.BENCH_WRAP?.split(' ').filter(Boolean) ?? []) : []
  const [program, programArgs]: [string, string[]] = wrap.length > 0 ? [wrap[0] as string, [...wrap.slice(1), command, ...args]] : [command, args]
  const startTimeoutMs = options.startTimeoutMs ?? (wrap.length > 0 ? 600_000 : 20_000)
  const [cmd, argv] = pinned(options.core === undefined ? SERVER_CORE : options.core, program, programArgs)
  const child = spawn(cmd, argv, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    if (ready === null) {
      child.stdout?.on('data', (data: Buffer) => (output += data.toString()))
      child.stderr?.on('data', (data: Buffer) => (output += data.toString()))
      child.once('exit', (code) => reject(new Error(`${command} exited with ${code}:\n${output}`)))
      return resolve(Object.assign([''], { index: 0, input: '' }) as RegExpExecArray)
    }
    const timer = setTimeout(() => reject(new Error(`${command} did not start:\n${output}`)), startTimeoutMs)
    const onData = (data: Buffer) => {
      output += data.toString()
      const found = ready.exec(output)
      if (found) {
        clearTimeout(timer)
        resolve(found)
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => reject(new Error(`${command} exited with ${code}:\n${output}`)))
  })
  return {
    child,
    match,
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await once(child, 'exit')
      clearTimeout(timer)
    },
  }
}

/** The fields of /proc/PID/stat after the command name (or of one thread: `statFields(pid, tid)`); none once gone. */
export function statFields(pid: number, tid?: number | string): string[] {
  try {
    return readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  } catch {
    return [] // gone
  }
}

/**
 * CPU time (user + system) a process and its children (nginx's workers) have used so far, in
 * microseconds (from /proc).
 */
export function cpuMicros(pid: number): number {
  let ticks = 0
  for (const each of [pid, ...childrenOf(pid)]) {
    const fields = statFields(each)
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0) // utime, stime (fields 14 and 15)
  }
  return (ticks * 1_000_000) / 100 // USER_HZ is 100 on Linux
}

function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    if (Number(statFields(Number(entry))[1]) === pid) out.push(Number(entry)) // field 4: ppid
  }
  return out
}

/**
 * The machine's CPU time so far (all cores), and how much of it the hypervisor gave to other
 * guests (steal): /proc/stat's first line, in USER_HZ ticks. A run with steal is a run whose
 * latencies include pauses the gateway did not cause.
 */
export function machineTicks(): { total: number; steal: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]?.trim().split(/\s+/).slice(1).map(Number) ?? []
  return { total: fields.slice(0, 8).reduce((sum, n) => sum + n, 0), steal: fields[7] ?? 0 }
}

/**
 * Resident memory in bytes (from /proc): now (VmRSS), the peak so far (VmHWM), or a part of VmRSS:
 * RssAnon (heaps, malloc) and RssFile (the mapped node binary and libraries; the rest is RssShmem).
 */
export function rssBytes(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile' = 'VmRSS'): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024
}

/** Resident memory of a process and its children (nginx's workers), in bytes: after a run, the memory it serves with. */
export function treeRssBytes(pid: number): number {
  return [pid, ...childrenOf(pid)].reduce((sum, each) => sum + rssBytes(each), 0)
}

/**
 * Moves the threads of a process with a given name (from /proc/PID/task/TID/comm) to a core, e.g.
 * the audit worker (`WorkerThread`) off the request thread's core. Answers how many moved.
 */
export function pinThreads(pid: number, name: string, core: string): number {
  if (!HAS_TASKSET) return 0
  let moved = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() !== name) continue
    if (spawnSync('taskset', ['-p', '-c', core, tid]).status === 0) moved++
  }
  return moved
}

/** The real pid behind a `taskset` wrapper is the same process (taskset execs the command). */
export function pidOf(started: Started): number {
  return started.child.pid as number
}
