// Rotation: a new random value (--generate, or a schedule's `generate` bytes, base64url), and for
// scheduled rotations a hook that installs it at the upstream first. The hook gets the new value on
// stdin (never in its arguments or environment); the value becomes the current version only when
// the hook exits 0. A failed rotation (the hook, or the store refusing the new version) is reported
// as a background failure (its output scrubbed) and retried with a backoff that doubles from 1s up
// to 5 minutes, so a broken hook does not run (and log) at every check.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { SecretsConfig } from '../config/index.ts'
import { redactValues, scrub, type BackgroundTasks, type Logger } from '../telemetry/index.ts'
import type { SecretStore } from './store.ts'

const HOOK_TIMEOUT_MS = 60_000
const RETRY_FIRST_MS = 1_000
const RETRY_MAX_MS = 300_000

export function generateSecret(bytes: number): string {
  return randomBytes(bytes).toString('base64url')
}

/** Runs a hook with the value on stdin; resolves with its exit status and the end of its output. */
function runHook(command: string, name: string, value: string): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, BOUNCER_SECRET_NAME: name } })
    let output = ''
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2_000))
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const timer = setTimeout(() => child.kill('SIGKILL'), HOOK_TIMEOUT_MS)
    child.on('error', (err) => {
      clearTimeout(timer)
      resolve({ ok: false, output: err.message })
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ ok: code === 0, output: scrub(output.replaceAll(value, '[redacted]')) })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(value)
  })
}

export interface RotationScheduler {
  /** Rotates every secret whose current version is older than its schedule; answers the names rotated. */
  due(): Promise<string[]>
}

export function rotationScheduler(store: SecretStore, schedules: SecretsConfig['rotation'], logger: Logger, background: BackgroundTasks, now: () => number = Date.now): RotationScheduler {
  const running = new Set<string>()
  const failures = new Map<string, { count: number; retryAt: number }>()

  function failed(name: string, err: unknown, message: string, fields: Record<string, unknown> = {}): void {
    const count = (failures.get(name)?.count ?? 0) + 1
    const retryInMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (count - 1))
    failures.set(name, { count, retryAt: now() + retryInMs })
    background.failed('secret_rotation', err, { message, fields: { secret_name: name, ...fields, failures: count, retry_in_ms: retryInMs } })
  }

  return {
    async due() {
      const rotated: string[] = []
      for (const [name, schedule] of Object.entries(schedules)) {
        if (running.has(name) || (failures.get(name)?.retryAt ?? 0) > now()) continue
        running.add(name)
        try {
          const latest = store.versions(name)[0]
          if (latest && now() - Date.parse(latest.createdAt) < schedule.every) continue
          const value = generateSecret(schedule.generate)
          redactValues([value])
          if (schedule.hook) {
            const { ok, output } = await runHook(schedule.hook, name, value)
            if (!ok) {
              failed(name, new Error('the rotation hook did not exit 0'), 'secret rotation hook failed: the current value stays, retrying later', { hook: schedule.hook, output })
              continue
            }
          }
          const version = store.put(name, value)
          failures.delete(name)
          logger.info({ secret_name: name, version }, 'secret rotated')
          rotated.push(name)
        } catch (err) {
          // The store would not give the versions or take the new one (locked, corrupt, full disk).
          failed(name, err, 'secret rotation failed: the current value stays, retrying later')
        } finally {
          running.delete(name)
        }
      }
      return rotated
    },
  }
}
