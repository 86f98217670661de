// Rotation: a new random value (--generate, or a schedule's `generate` bytes, base64url), and for
// scheduled rotations a hook that installs it at the upstream first. The hook gets the new value on
// stdin (never in its arguments or environment); the value becomes the current version only when
// the hook exits 0. A failed hook is logged (its output scrubbed) and retried with a backoff that
// doubles from 1s up to 5 minutes, so a broken hook does not run (and log) at every check.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { SecretsConfig } from '../config/index.ts'
import { redactValues, scrub, type Logger } from '../telemetry/logger.ts'
import type { SecretStore } from './store.ts'

const HOOK_TIMEOUT_MS = 60_000
const RETRY_FIRST_MS = 1_000
const RETRY_MAX_MS = 300_000

export function generateSecret(bytes: number): string {
  return randomBytes(bytes).toString('base64url')
}

/** Runs a hook with the value on stdin; resolves with its exit status and the end of its output. */
export function runHook(command: string, name: string, value: string): Promise<{ ok: boolean; output: string }> {
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

export function rotationScheduler(store: SecretStore, schedules: SecretsConfig['rotation'], logger: Logger, now: () => number = Date.now): RotationScheduler {
  const running = new Set<string>()
  const failures = new Map<string, { count: number; retryAt: number }>()
  return {
    async due() {
      const rotated: string[] = []
      for (const [name, schedule] of Object.entries(schedules)) {
        if (running.has(name) || (failures.get(name)?.retryAt ?? 0) > now()) continue
        const latest = store.versions(name)[0]
        if (latest && now() - Date.parse(latest.createdAt) < schedule.every) continue
        running.add(name)
        try {
          const value = generateSecret(schedule.generate)
          redactValues([value])
          if (schedule.hook) {
            const { ok, output } = await runHook(schedule.hook, name, value)
            if (!ok) {
              const count = (failures.get(name)?.count ?? 0) + 1
              const retryInMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (count - 1))
              failures.set(name, { count, retryAt: now() + retryInMs })
              logger.error({ secret_name: name, hook: schedule.hook, output, failures: count, retry_in_ms: retryInMs }, 'secret rotation hook failed: the current value stays, retrying later')
              continue
            }
          }
          failures.delete(name)
          const version = store.put(name, value)
          logger.info({ secret_name: name, version }, 'secret rotated')
          rotated.push(name)
        } finally {
          running.delete(name)
        }
      }
      return rotated
    },
  }
}
