// Traffic over time by outcome, latency (the whole request vs the upstream's share), the busiest
// routes and principals, and the denial reasons. Drag across a chart to zoom into that range
// (brushing); click a route or a principal to filter by it. A relative range refreshes every 10 s
// while the console is in use.
import { useEffect, useMemo, useState } from 'preact/hooks'
import { api, query } from '../api'
import { Chart, ChartTable, type Series } from '../chart'
import { count, ms, time } from '../format'
import { here, href, setParams } from '../router'
import { Empty, Failure, outcomeColor, Panel } from '../ui'
import type { Overview } from '../../../src/audit/aggregate-shapes.ts'

const RANGES = ['15m', '1h', '6h', '24h', '7d', '30d']
let loadedAt = 0
const LIVE_MS = 10_000
/**
 * The live refresh stops after this long without a click, key or mouse move: a tab left open is
 * not someone using the console, and its requests would keep their session from ever going idle.
 */
export const QUIET_MS = 5 * 60_000
let lastInput = Date.now()
for (const type of ['pointerdown', 'pointermove', 'keydown', 'wheel']) addEventListener(type, () => (lastInput = Date.now()), { capture: true, passive: true })

export function OverviewPage() {
  // The range, the zoomed-in span and the chips live in the URL: a reload, back/forward and a shared link keep them.
  const p = here.value.params
  const range = p.get('since') ?? '1h'
  const from = Date.parse(p.get('from') ?? '')
  const to = Date.parse(p.get('to') ?? '')
  const brush = Number.isNaN(from) || Number.isNaN(to) ? null : { from, to }
  const route = p.get('route')
  const principal = p.get('principal')
  const setBrush = (b: { from: number; to: number } | null) => setParams({ from: b && new Date(b.from).toISOString(), to: b && new Date(b.to).toISOString() })
  const [answer, setAnswer] = useState<{ path: string; overview: Overview } | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [live, setLive] = useState(true)
  const [quiet, setQuiet] = useState(false)

  const path = `overview${query({
    since: brush ? new Date(brush.from).toISOString() : range,
    until: brush ? new Date(brush.to).toISOString() : undefined,
    route,
    principal,
  })}`

  useEffect(() => {
    let stopped = false
    const load = () =>
      api<Overview>(path, { background: true }).then((d) => !stopped && ((loadedAt = performance.now()), setAnswer({ path, overview: d }), setError(null)), (err) => !stopped && setError(err))
    if (!quiet) void load()
    const timer = live && !brush && !quiet ? setInterval(() => (Date.now() - lastInput >= QUIET_MS ? setQuiet(true) : void load()), LIVE_MS) : undefined
    // Paused for want of use: the next input resumes it (and refreshes at once).
    const wake = () => setQuiet(false)
    const types = ['pointerdown', 'pointermove', 'keydown', 'wheel']
    if (quiet) for (const type of types) addEventListener(type, wake, { once: true, passive: true })
    return () => {
      stopped = true
      clearInterval(timer)
      for (const type of types) removeEventListener(type, wake)
    }
  }, [path, live, quiet])

  // The previous range's answer stays on screen while the new one is asked, marked busy and not ready: it is not this range's.
  const data = answer?.overview ?? null
  const current = answer !== null && answer.path === path
  const traffic = useMemo<Series[]>(() => {
    if (!data) return []
    // Stacked bars: each series is the running sum, drawn tallest first so each shows its own band.
    const sums = data.buckets.map(() => 0)
    const stacked = data.outcomes.map((o) => ({
      label: o.key,
      color: outcomeColor(o.key),
      values: o.counts.map((c, j) => (sums[j] = (sums[j] as number) + c)),
      bars: true,
    }))
    return stacked.reverse()
  }, [data])

  const latency = useMemo<Series[]>(() => (data ? [
    { label: 'request p50', color: '#1f77b4', values: data.latency.total_p50 },
    { label: 'request p99', color: '#1f77b4', values: data.latency.total_p99, dash: [6, 4] },
    { label: 'upstream p50', color: '#ff7f0e', values: data.latency.upstream_p50 },
    { label: 'upstream p99', color: '#ff7f0e', values: data.latency.upstream_p99, dash: [6, 4] },
  ] : []), [data])

  const xEnd = data ? (data.buckets.at(-1) ?? 0) + data.bucket_ms : 0
  // Marks for bench/console.ts: when the first data arrived, and when its charts were drawn.
  useEffect(() => {
    if (data && performance.getEntriesByName('bouncer:overview-drawn').length === 0) {
      performance.mark('bouncer:overview-data', { startTime: loadedAt })
      requestAnimationFrame(() => performance.mark('bouncer:overview-drawn'))
    }
  }, [data])
  // The Denials page opens on what this page shows: its range (or zoomed span), route and principal.
  const denialsScope = { since: brush ? new Date(brush.from).toISOString() : range, until: brush ? new Date(brush.to).toISOString() : null, route, principal }
  const onSelect = (from: number, to: number) => setBrush({ from: Math.floor(from), to: Math.ceil(to) })

  return (
    <div class="overview" data-ready={current ? 'true' : undefined} aria-busy={data && !current ? 'true' : undefined}>
      <div class="toolbar">
        <span class="ranges" role="group" aria-label="Range">
          {RANGES.map((r) => (
            <button type="button" class={!brush && r === range ? 'on' : ''} aria-pressed={!brush && r === range} onClick={() => setParams({ since: r, from: null, to: null })}>{r}</button>
          ))}
        </span>
        {brush && (
          <span class="chip">
            {time(new Date(brush.from).toISOString())} – {time(new Date(brush.to).toISOString())}
            <button type="button" class="link" onClick={() => setBrush(null)} aria-label="Clear the selected range">×</button>
          </span>
        )}
        {route !== null && <span class="chip">route {route} <button type="button" class="link" onClick={() => setParams({ route: null })} aria-label="Clear the route">×</button></span>}
        {principal !== null && <span class="chip">principal {principal} <button type="button" class="link" onClick={() => setParams({ principal: null })} aria-label="Clear the principal">×</button></span>}
        {quiet && live && !brush && <small class="quiet" role="status" data-testid="quiet">live refresh paused after {QUIET_MS / 60_000} minutes without use: move or click to resume</small>}
        <label class="live"><input type="checkbox" checked={live} onChange={(e) => setLive((e.target as HTMLInputElement).checked)} /> live</label>
      </div>
      <Failure error={error} />
      {data && (
        <>
          <div class="totals">
            <span><b>{count(data.totals.requests)}</b> requests</span>
            <span class="allow"><b>{count(data.totals.allow)}</b> allowed</span>
            <span class="deny"><b>{count(data.totals.deny)}</b> denied</span>
            <span class="err"><b>{count(data.totals.error)}</b> errors</span>
            <small>{time(data.since)} – {time(data.until)} UTC, {data.bucket_ms / 1000}s buckets; drag across a chart to zoom</small>
          </div>
          <div class="charts">
            <div>
              <Chart title="Requests by outcome" x={data.buckets} xEnd={xEnd} series={traffic} onSelect={onSelect}>
                <ChartTable title="Requests by outcome" x={data.buckets} columns={data.outcomes.map((o) => ({ label: o.key, values: o.counts }))} format={(v) => count(v ?? 0)} bucketMs={data.bucket_ms} onSelect={onSelect} />
              </Chart>
              <ul class="legend">
                {data.outcomes.map((o) => (
                  <li><i class="swatch" style={{ background: outcomeColor(o.key) }} />{o.key} <b>{count(o.counts.reduce((a, c) => a + c, 0))}</b></li>
                ))}
              </ul>
            </div>
            <Chart title="Latency of forwarded requests: in all vs at the upstream (ms)" x={data.buckets} xEnd={xEnd} series={latency} unit="ms" onSelect={onSelect}>
              <ChartTable title="Latency of forwarded requests (ms)" x={data.buckets} columns={latency} format={ms} bucketMs={data.bucket_ms} onSelect={onSelect} />
            </Chart>
          </div>
          <div class="grid3">
            <Panel title="Top routes">
              {data.top_routes.length === 0 ? <Empty>No requests in this range.</Empty> : (
                <table>
                  <thead><tr><th>route</th><th class="num">requests</th><th class="num">denied</th><th class="num">errors</th></tr></thead>
                  <tbody>
                    {data.top_routes.map((r) => (
                      <tr>
                        <td>{r.route === null ? <i>no route</i> : <button type="button" class="link" onClick={() => setParams({ route: r.route })}>{r.route}</button>}</td>
                        <td class="num">{count(r.requests)}</td><td class="num">{count(r.denied)}</td><td class="num">{count(r.errors)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </Panel>
            <Panel title="Top principals">
              {data.top_principals.length === 0 ? <Empty>No requests in this range.</Empty> : (
                <table>
                  <thead><tr><th>principal</th><th class="num">requests</th><th class="num">denied</th></tr></thead>
                  <tbody>
                    {data.top_principals.map((p) => (
                      <tr>
                        <td>{p.principal === null ? <i>anonymous</i> : <button type="button" class="link" onClick={() => setParams({ principal: p.principal })}>{p.principal}</button>}</td>
                        <td class="num">{count(p.requests)}</td><td class="num">{count(p.denied)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </Panel>
            <Panel title="Denial reasons" actions={<a href={href('denials', denialsScope)}>all denials →</a>}>
              {data.denial_reasons.length === 0 ? <Empty>No denials in this range.</Empty> : (
                <table>
                  <thead><tr><th>code</th><th>statement</th><th class="num">count</th></tr></thead>
                  <tbody>
                    {data.denial_reasons.map((d) => (
                      <tr>
                        <td>{d.code === null ? '–' : <a href={href('denials', { ...denialsScope, code: d.code })} data-testid="denial-reason">{d.code}</a>}</td>
                        <td>{d.statement ?? '–'}</td><td class="num">{count(d.count)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </Panel>
          </div>
          <p class="hint">Forwarded requests, median of the buckets' p50: {ms(median(data.latency.total_p50))} ms in all, {ms(median(data.latency.upstream_p50))} ms at the upstream; the difference is the gateway's own time.</p>
        </>
      )}
    </div>
  )
}

function median(values: Array<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null).sort((a, b) => a - b)
  return known.length === 0 ? null : (known[Math.floor(known.length / 2)] as number)
}
