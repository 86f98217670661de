// Active health checks (upstreams[].health_check): every `interval`, each target is asked for
// `path` through its own pool (the same connection settings and TLS as requests), and a 2xx within
// `timeout` is a pass. `unhealthy_after` failures in a row take it out of rotation, `healthy_after`
// passes in a row bring it back. A target starts healthy, so a starting gateway serves at once;
// the first round runs at start. The checks run as a background task: a bug in one is logged and
// counted (bouncer_background_failures_total{task="upstream_health_checks"}), never fatal, and the
// target keeps its state until the next round. With server.workers they run once for the gateway,
// in the first worker, and the others apply its verdicts (health-share.ts).
import type { HealthCheckConfig } from '../config/index.ts'
import type { BackgroundTasks } from '../telemetry/index.ts'
import { brokeKeptAlive } from './errors.ts'
import { followHealth, shareHealth, type HealthCheckRole, type HealthShare } from './health-share.ts'
import { checksClient, setTargetHealth, type Target, type TargetOwner } from './targets.ts'

type Checked = TargetOwner & { readonly targets: readonly Target[] }

/**
 * Starts the checks of every target, or, in a worker other than the first (`role` 'follower'),
 * applies the first worker's verdicts instead; answers the function that stops them.
 */
export function startHealthChecks(owner: Checked, check: HealthCheckConfig, background: BackgroundTasks, role: HealthCheckRole = 'alone'): () => void {
  if (role === 'follower') return followHealthChecks(owner, check, background)
  return probeTargets(owner, check, background, role === 'prober' ? shareHealth(owner.name, check) : null)
}

/** How long a crashed first worker may take to be replaced: the supervisor's longest backoff (5 s) and a start. */
export const FIRST_WORKER_RESTART_MS = 10_000

/**
 * The verdicts of the worker that probes, applied to the targets of the same URL (none: ignored).
 * Should they stop coming (the first worker cannot start again: its replacement failing on the
 * config in force, restarting in a loop), this worker probes for itself, unshared, until they come
 * again: a target that went down meanwhile is not held in rotation for good (a review).
 */
function followHealthChecks(owner: Checked, check: HealthCheckConfig, background: BackgroundTasks): () => void {
  const byUrl = new Map(owner.targets.map((target) => [target.url, target]))
  // The prober shares once a run of rounds reaches its thresholds, then every round: two rounds
  // more, and the time a crashed first worker takes to be replaced (its backoff, up to 5 s, and its
  // start), or every restart of it set every follower probing (a review).
  const silentMs = (Math.max(check.healthy_after, check.unhealthy_after) + 2) * (check.interval + check.timeout) + FIRST_WORKER_RESTART_MS
  let heardAt = performance.now()
  let probing: (() => void) | null = null
  const stopFollowing = followHealth(owner.name, check, (verdict) => {
    heardAt = performance.now()
    if (probing) {
      probing()
      probing = null
      owner.logger.info({ upstream: owner.name }, 'the first worker\'s health checks are heard again: this worker stops its own')
    }
    const target = byUrl.get(verdict.target)
    if (target) void background.run('upstream_health_checks', () => setTargetHealth(owner, target, verdict.healthy, verdict.reason))
  })
  const watchdog = setInterval(() => {
    if (probing !== null || performance.now() - heardAt <= silentMs) return
    owner.logger.warn({ upstream: owner.name, silent_ms: Math.round(performance.now() - heardAt) }, 'no health verdict from the first worker: this worker checks the targets itself until they come again')
    probing = probeTargets(owner, check, background, null)
  }, check.interval)
  watchdog.unref()
  return () => {
    clearInterval(watchdog)
    probing?.()
    stopFollowing()
  }
}

function probeTargets(owner: Checked, check: HealthCheckConfig, background: BackgroundTasks, share: HealthShare | null): () => void {
  let stopped = false
  const timers = new Map<Target, NodeJS.Timeout>()
  for (const target of owner.targets) {
    let passes = 0
    let failures = 0
    let lastFailure = ''
    /** This prober has taken the target out or brought it back at least once: its state is a verdict. */
    let reached = false
    const round = async () => {
      const failure = await probe(target, check)
      if (stopped) return
      if (failure === null) {
        failures = 0
        if (++passes >= check.healthy_after) setTargetHealth(owner, target, true, '')
      } else {
        passes = 0
        lastFailure = failure
        if (++failures >= check.unhealthy_after) setTargetHealth(owner, target, false, failure)
      }
      // Every round, changed or not, so a worker that started since agrees by the next one; but only
      // once this prober has reached a verdict: a new prober (w1 replaced) starts with every target
      // healthy, and shared that before its own checks had taken a down target out again.
      if (failures >= check.unhealthy_after || passes >= check.healthy_after) reached = true
      if (reached) share?.post({ target: target.url, healthy: target.healthy, reason: target.healthy ? '' : lastFailure })
    }
    const loop = () => {
      void background.run('upstream_health_checks', round).then(() => {
        if (stopped) return
        const timer = setTimeout(loop, check.interval)
        timer.unref()
        timers.set(target, timer)
      })
    }
    loop()
  }
  return () => {
    stopped = true
    for (const timer of timers.values()) clearTimeout(timer)
    share?.close()
  }
}

/** Null for a pass; otherwise why it failed, for the log line. */
async function probe(target: Target, check: HealthCheckConfig): Promise<string | null> {
  try {
    return await ask(target, check)
  } catch (err) {
    // The target closed the checks' kept-alive connection as idle while the check went out: no
    // verdict on its health, asked again on a new connection (a request is too: dispatch.ts). A
    // target that answered was taken out at unhealthy_after 1.
    if (!brokeKeptAlive(err as Error)) return failed(check, err)
    return ask(target, check).catch((again: unknown) => failed(check, again))
  }
}

async function ask(target: Target, check: HealthCheckConfig): Promise<string | null> {
  const res = await checksClient(target, check.timeout).request({
    path: check.path,
    method: 'GET',
    headers: { 'user-agent': 'bouncer-health-check' },
    headersTimeout: check.timeout,
    bodyTimeout: check.timeout,
    signal: AbortSignal.timeout(check.timeout),
  })
  await res.body.dump({ limit: 65_536 })
  return res.statusCode >= 200 && res.statusCode < 300 ? null : `GET ${check.path} answered ${res.statusCode}`
}

function failed(check: HealthCheckConfig, err: unknown): string {
  const code = (err as { code?: string; name?: string }).code ?? (err as Error).name
  return `GET ${check.path} failed: ${(err as Error).message} (${code})`
}
