// Rotation: a new random value (--generate, or a schedule's `generate` bytes, base64url), and for
// scheduled rotations a hook that installs it at the upstream first. The hook gets the new value on
// stdin (never in its arguments or environment); the value becomes the current version only when
// the hook exits 0. A failed rotation (the hook, or the store refusing the new version) is reported
// as a background failure (its output scrubbed) and retried with a backoff that doubles from 1s up
// to 5 minutes, so a broken hook does not run (and log) at every check. A value the hook installed
// that the store then refused is kept and written at the retry, not replaced by a new one.
import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { SecretsConfig } from '../config/index.ts'
import { redactValues, scrub, type BackgroundTasks, type Logger } from '../telemetry/index.ts'
import { leaseUnlocked, putUnlocked, type SecretStore } from './store.ts'

const HOOK_TIMEOUT_MS = 60_000
const RETRY_FIRST_MS = 1_000
const RETRY_MAX_MS = 300_000

export function generateSecret(bytes: number): string {
  return randomBytes(bytes).toString('base64url')
}

/** How much of a failed hook's output is logged: its end. */
const OUTPUT_LOGGED = 2_000

/**
 * The last OUTPUT_LOGGED characters of a hook's output, the new value taken out. Taken out after
 * the cut, a value across it was no longer whole, and the part after the cut was logged as it was
 * (a probe: 20 of its 32 characters): the cut moves back to the start of such a value.
 */
function lastOutput(output: string, value: string): string {
  let cut = Math.max(0, output.length - OUTPUT_LOGGED)
  const across = output.indexOf(value, Math.max(0, cut - value.length + 1))
  if (across !== -1 && across < cut) cut = across
  return output.slice(cut).replaceAll(value, '[redacted]')
}

/** After the hook exits, how long its output may still take: a process it left running may hold its pipes. */
const OUTPUT_GRACE_MS = 200

/**
 * Runs a hook with the value on stdin; resolves with its exit status and the end of its output.
 * Its status is its exit, not the close of its pipes: a hook that started something in the
 * background (`reload-service &`) exited 0 while that process held its stdout, and the rotation
 * waited on 'close' for good, the new value (already installed at the upstream) never made current
 * and the secret skipped by every later check (found by a probe). The hook runs in a process group
 * of its own, so its timeout ends what it started too.
 */
function runHook(command: string, name: string, value: string, env: NodeJS.ProcessEnv): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...env, BOUNCER_SECRET_NAME: name }, detached: true })
    let output = ''
    // A value's length more than is logged: a value across the cut is still whole here (lastOutput).
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-(OUTPUT_LOGGED + value.length)))
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL') // the group: the hook and what it started
      } catch {
        child.kill('SIGKILL')
      }
    }, HOOK_TIMEOUT_MS)
    child.on('error', (err) => {
      clearTimeout(timer)
      resolve({ ok: false, output: err.message })
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      const answer = () => {
        child.stdout.destroy()
        child.stderr.destroy()
        resolve({ ok: code === 0, output: scrub(lastOutput(output, value)) })
      }
      const grace = setTimeout(answer, OUTPUT_GRACE_MS)
      child.once('close', () => {
        clearTimeout(grace)
        answer()
      })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(value)
  })
}

/**
 * The gateway's environment without the master key's variable (`master_key: env:NAME`): a hook
 * installs one value at an upstream and needs no key to the whole store. Given it, a hook that
 * printed its environment (a `set -x`, a tool's error dump) put the master key in the log with its
 * output (found by the secrets probe).
 */
export function hookEnvironment(store: SecretsConfig['store'], env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const withheld = store.type === 'embedded' && store.master_key.startsWith('env:') ? store.master_key.slice(4) : undefined
  return withheld === undefined ? { ...env } : Object.fromEntries(Object.entries(env).filter(([variable]) => variable !== withheld))
}

/**
 * The secrets being rotated, and the failed ones' backoff: the running config's scheduler hands
 * them to the next config's at a reload. A new scheduler knew nothing of a hook still running, found
 * the secret due, and ran the hook again with another value (found by the operator probe).
 */
export interface RotationState {
  readonly running: Set<string>
  readonly failures: Map<string, { count: number; retryAt: number }>
  /**
   * Values a hook installed at the upstream that the store then refused (locked, full disk): the
   * retry writes the same value. It generated another and ran the hook again, which found the
   * upstream already holding a value the gateway had lost (an operator probe). Held in memory only:
   * a process that ends before the retry loses it, and says so in its last failure's log line.
   */
  readonly unstored: Map<string, string>
  /**
   * Versions made ahead of this process's clock (another instance's clock ahead, this one set
   * back), and when they were first seen: their age counts from then. Counted from their
   * createdAt, the rotation waited for the clock to catch up (an hour's skew: an hour late).
   */
  readonly ahead: Map<string, { createdAt: string; seenAt: number }>
  /** Who this process's rotations are in the store's leases (tryLease): the same across its reloads. */
  readonly leaseHolder: string
}

/**
 * How long a rotation's lease lasts: longer than its hook may run (HOOK_TIMEOUT_MS) and than the
 * retries of a value the store refused after the hook installed it. A gateway that stops mid-rotation
 * leaves it to expire: the other instances rotate that secret after that.
 */
const LEASE_MS = 10 * 60_000

export function newRotationState(): RotationState {
  return { running: new Set(), failures: new Map(), unstored: new Map(), ahead: new Map(), leaseHolder: `${hostname()}:${process.pid}:${randomUUID()}` }
}

export interface RotationScheduler {
  /** Rotates every secret whose current version is older than its schedule; answers the names rotated. */
  due(): Promise<string[]>
  readonly state: RotationState
  /** Settles once none of this scheduler's rotations runs: its store may be closed then. */
  idle(): Promise<void>
}

export function rotationScheduler(store: SecretStore, secrets: SecretsConfig, logger: Logger, background: BackgroundTasks, now: () => number = Date.now, state: RotationState = newRotationState()): RotationScheduler {
  const { running, failures, unstored, ahead, leaseHolder } = state
  const schedules = secrets.rotation
  const hookEnv = hookEnvironment(secrets.store)
  const underway = new Set<Promise<unknown>>()

  function failed(name: string, err: unknown, message: string, fields: Record<string, unknown> = {}): void {
    const count = (failures.get(name)?.count ?? 0) + 1
    const retryInMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (count - 1))
    failures.set(name, { count, retryAt: now() + retryInMs })
    background.failed('secret_rotation', err, { message, fields: { secret_name: name, ...fields, failures: count, retry_in_ms: retryInMs } })
  }

  /** When a version was made, one in this clock's future counting from when it was first seen (warned of once a name). */
  function madeAt(name: string, createdAt: string): number {
    const made = Date.parse(createdAt)
    const at = now()
    if (!(made > at)) {
      ahead.delete(name)
      return made
    }
    let seen = ahead.get(name)
    if (seen?.createdAt !== createdAt) {
      if (seen === undefined) logger.warn({ secret_name: name, createdAt }, `secret ${name}'s current version was made ${Math.round((made - at) / 1000)} s ahead of this clock (clocks out of step): its age counts from now`)
      seen = { createdAt, seenAt: at }
      ahead.set(name, seen)
    }
    return seen.seenAt
  }

  /**
   * This process's lease on rotating `name` (stores without leases: always): another instance's
   * lease skips this round. A store another process holds the write lock of is waited for on
   * timers, then the rotation fails as locked, as its write would.
   */
  async function leased(name: string): Promise<boolean> {
    const taken = await leaseUnlocked(store, name, leaseHolder, LEASE_MS)
    if (!taken) logger.debug({ secret_name: name }, `secret ${name} is due, but another gateway on this store is rotating it: this one skips the round`)
    return taken
  }

  async function due(): Promise<string[]> {
    const rotated: string[] = []
    for (const [name, schedule] of Object.entries(schedules)) {
      if (running.has(name) || (failures.get(name)?.retryAt ?? 0) > now()) continue
      running.add(name)
      try {
        let value = unstored.get(name)
        if (value === undefined) {
          const latest = store.versions(name)[0]
          if (latest && now() - madeAt(name, latest.createdAt) < schedule.every) continue
          if (!(await leased(name))) continue
          // Another instance may have rotated it between the read above and the lease.
          const since = store.versions(name)[0]
          if (since?.version !== latest?.version) {
            store.releaseLease?.(name, leaseHolder)
            continue
          }
          value = generateSecret(schedule.generate)
          redactValues([value])
          if (schedule.hook) {
            const { ok, output } = await runHook(schedule.hook, name, value, hookEnv)
            if (!ok) {
              store.releaseLease?.(name, leaseHolder) // nothing installed: another instance may try
              failed(name, new Error('the rotation hook did not exit 0'), 'secret rotation hook failed: the current value stays, retrying later', { hook: schedule.hook, output })
              continue
            }
            unstored.set(name, value)
          }
        }
        // A value the hook installed is written by this process only: it renews its lease (kept
        // meanwhile, so no other instance runs the hook with another value).
        if (unstored.has(name)) store.tryLease?.(name, leaseHolder, LEASE_MS)
        const version = await putUnlocked(store, name, value)
        store.releaseLease?.(name, leaseHolder)
        unstored.delete(name)
        failures.delete(name)
        logger.info({ secret_name: name, version }, 'secret rotated')
        rotated.push(name)
      } catch (err) {
        // The store would not give the versions or take the new one (locked, corrupt, full disk).
        if (unstored.has(name)) failed(name, err, 'secret rotation failed after its hook installed the new value: the store refused it; the gateway holds the value in memory and writes it at the retry (the hook does not run again)')
        else failed(name, err, 'secret rotation failed: the current value stays, retrying later')
      } finally {
        running.delete(name)
      }
    }
    return rotated
  }

  return {
    state,
    due() {
      const work = due()
      underway.add(work)
      const forget = () => underway.delete(work)
      void work.then(forget, forget)
      return work
    },
    async idle() {
      await Promise.allSettled([...underway])
    },
  }
}
