// Per-target and per-upstream series, read from the upstreams at scrape time (the request path only
// bumps plain counters on its target) and rendered in Prometheus text format.

/** What the metrics read of one target. */
export interface TargetGauges {
  readonly url: string
  /** Taking requests: healthy by its checks and not ejected. */
  readonly available: boolean
  readonly inFlight: number
  readonly counts: { readonly requests: number; readonly failures: number; readonly ejections: number }
}

/** What the metrics read of one upstream. */
export interface UpstreamGauges {
  readonly name: string
  readonly targets: readonly TargetGauges[]
  readonly retryCounts: { readonly retries: number; readonly retriesOverBudget: number }
}

function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

const TARGET_SERIES: ReadonlyArray<{ name: string; type: 'gauge' | 'counter'; help: string; value: (t: TargetGauges) => number }> = [
  { name: 'bouncer_upstream_target_up', type: 'gauge', help: '1 while a target takes requests (healthy by its checks, not ejected).', value: (t) => (t.available ? 1 : 0) },
  { name: 'bouncer_upstream_target_in_flight', type: 'gauge', help: 'Requests in flight to a target.', value: (t) => t.inFlight },
  { name: 'bouncer_upstream_target_requests_total', type: 'counter', help: 'Tries sent to a target, retries included.', value: (t) => t.counts.requests },
  { name: 'bouncer_upstream_target_failures_total', type: 'counter', help: 'Tries to a target that failed: no connection, a reset or timeout before the answer, an answer that is not HTTP, or a 5xx.', value: (t) => t.counts.failures },
  { name: 'bouncer_upstream_target_ejections_total', type: 'counter', help: 'Times a target was taken out after consecutive failures (eject).', value: (t) => t.counts.ejections },
]

const UPSTREAM_SERIES: ReadonlyArray<{ name: string; help: string; value: (u: UpstreamGauges) => number }> = [
  { name: 'bouncer_upstream_retries_total', help: 'Failed tries sent again to a target of the upstream.', value: (u) => u.retryCounts.retries },
  { name: 'bouncer_upstream_retries_over_budget_total', help: 'Retries the upstream\'s retry budget refused: the failure went to the client.', value: (u) => u.retryCounts.retriesOverBudget },
]

export function renderUpstreamMetrics(upstreams: Iterable<UpstreamGauges>): string {
  const list = [...upstreams]
  const lines: string[] = []
  for (const series of TARGET_SERIES) {
    lines.push(`# HELP ${series.name} ${series.help}`, `# TYPE ${series.name} ${series.type}`)
    for (const upstream of list) {
      for (const target of upstream.targets) lines.push(`${series.name}{upstream="${escape(upstream.name)}",target="${escape(target.url)}"} ${series.value(target)}`)
    }
  }
  for (const series of UPSTREAM_SERIES) {
    lines.push(`# HELP ${series.name} ${series.help}`, `# TYPE ${series.name} counter`)
    for (const upstream of list) lines.push(`${series.name}{upstream="${escape(upstream.name)}"} ${series.value(upstream)}`)
  }
  return `${lines.join('\n')}\n`
}
