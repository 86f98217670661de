// Work the gateway does on its own, outside any request: reloads on SIGHUP, secret refreshes and
// rotations, identity key loads, the audit worker. Every such task runs through here, so that a
// failure, expected (a provider down, a hook exiting 3) or not (a bug, a disk fault), is logged
// with its stack, counted in bouncer_background_failures_total{task}, and never ends the process:
// Node 24 exits on an unhandled rejection, and one timer callback that throws would take every
// request in flight down with it.
import type { Logger } from './logger.ts'

/** Each task, and what the gateway does when it fails (said in the log line). */
export const BACKGROUND_TASKS = {
  reload: 'the running config keeps serving',
  secrets_refresh: 'the values in use stay until the next refresh',
  secret_rotation: 'the current value stays; retried later',
  assertion_key_rotation: 'the current signing key stays',
  exchange_key_rotation: 'the current token exchange signing key stays',
  issuer_keys: 'cached keys, if any, keep serving; retrying',
  audit_worker: 'a new worker takes over the queue',
  runtime_retirement: 'the old runtime is closed at shutdown instead',
  upstream_health_checks: 'the target keeps its health until the next check',
  api_key_usage: 'the API keys\' last-used times are kept and written at the next attempt',
  function_worker: 'a new worker takes its place',
  trace_export: 'the batch\'s spans are dropped; logged again only once exports work again and fail anew',
  // Not tasks: what `bouncer serve` and `bouncer demo` catch at the process level (src/cli/serve.ts,
  // src/cli/demo.ts; the demo stops rather than drain).
  unhandled_rejection: 'the gateway keeps serving',
  uncaught_exception: 'draining, then exiting 1',
} as const

export type BackgroundTask = keyof typeof BACKGROUND_TASKS

export interface FailureCounter {
  backgroundFailed(task: BackgroundTask): void
}

export interface BackgroundTasks {
  /** Runs `work` now; a throw or a rejection goes to `failed`. The promise never rejects. */
  run(task: BackgroundTask, work: () => unknown): Promise<void>
  /**
   * A failure of a task: logged at error level with its stack and counted. `message` replaces the
   * generic log message where the task has a more precise one; `fields` are added to the line.
   */
  failed(task: BackgroundTask, err: unknown, details?: { message?: string; fields?: Record<string, unknown> }): void
}

export function createBackgroundTasks(logger: Logger, counter: FailureCounter): BackgroundTasks {
  function failed(task: BackgroundTask, err: unknown, details: { message?: string; fields?: Record<string, unknown> } = {}): void {
    // Counted first: a logger that throws (a closed destination) must not hide the failure too.
    counter.backgroundFailed(task)
    try {
      logger.error({ task, err, ...details.fields }, details.message ?? `background task ${task} failed: ${BACKGROUND_TASKS[task]}`)
    } catch {
      // Nowhere left to say it; the counter has it.
    }
  }
  return {
    failed,
    async run(task, work) {
      try {
        await work()
      } catch (err) {
        failed(task, err)
      }
    },
  }
}
