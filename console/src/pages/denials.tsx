// Denials grouped by code × route × principal, headed by what was recorded, each with its explanation
// under the running config (and why it differs, when it does) and a request to simulate.
import { useEffect, useState } from 'preact/hooks'
import { api, query } from '../api'
import { ago, count, time } from '../format'
import { go, here, setParams } from '../router'
import { prefill } from '../state'
import { Empty, Failure, Panel } from '../ui'
import type { ExplainedDenial } from '../../../src/admin/console-shapes.ts'

// The Overview's ranges: its links open this page at the range it showed.
const RANGES = ['15m', '1h', '6h', '24h', '7d', '30d']

/** What a Denials link may select by (#/denials?since=1h&code=token_expired): the Overview's links carry them. */
const SCOPE = ['code', 'route', 'principal'] as const

export function DenialsPage() {
  // The range and the filters live in the URL: a reload, back/forward and a shared link keep them.
  const p = here.value.params
  const since = p.get('since') ?? '24h'
  const until = p.get('until')
  const path = `denials${query({ since, until, code: p.get('code'), route: p.get('route'), principal: p.get('principal') })}`
  const [answer, setAnswer] = useState<{ path: string; groups: ExplainedDenial[] } | null>(null)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    let stale = false
    api<ExplainedDenial[]>(path).then((g) => !stale && (setAnswer({ path, groups: g }), setError(null)), (err: unknown) => !stale && (setAnswer(null), setError(err)))
    return () => {
      stale = true
    }
  }, [path])
  // The previous range's groups stay on screen while the new one is asked, marked busy and not ready: they are not its answer.
  const groups = answer?.groups ?? null
  const current = answer !== null && answer.path === path
  const simulate = (g: ExplainedDenial) => {
    // No claims: the request had no verified identity (no token, or one that was rejected), so none are made up.
    prefill.value = g.simulate.claims ? g.simulate : { ...g.simulate, note: `The recorded request had no verified identity (${g.code ?? 'no code'}): paste a token or claims to try one.` }
    go('simulator')
  }
  return (
    <div class="denials" data-ready={current ? 'true' : undefined} aria-busy={groups && !current ? 'true' : undefined}>
      <div class="toolbar">
        <span class="ranges" role="group" aria-label="Range">
          {RANGES.map((r) => <button type="button" class={r === since && !until ? 'on' : ''} aria-pressed={r === since && !until} onClick={() => setParams({ since: r, until: null })}>{r}</button>)}
        </span>
        {(until !== null || !RANGES.includes(since)) && (
          <span class="chip" data-testid="filter">
            {time(since)} – {until === null ? 'now' : time(until)}
            <button type="button" class="link" onClick={() => setParams({ since: '24h', until: null })} aria-label="Clear the range">×</button>
          </span>
        )}
        {SCOPE.map((name) => {
          const value = p.get(name)
          return value && <span class="chip" data-testid="filter">{name} {value} <button type="button" class="link" onClick={() => setParams({ [name]: null })} aria-label={`Clear the ${name}`}>×</button></span>
        })}
      </div>
      <Failure error={error} />
      <Panel title="Denials by code × route × principal">
        {groups && groups.length === 0 ? <Empty>No denials in this range.</Empty> : (
          <table class="rows">
            <thead><tr><th>code</th><th>route</th><th>principal</th><th class="num">count</th><th>last</th><th>why</th><th><span class="sr-only">simulate</span></th></tr></thead>
            <tbody>
              {groups?.map((g) => (
                <tr data-testid="denial">
                  <td><b class="tag deny">{g.recorded.status}<span class="sr-only"> deny</span></b> {g.recorded.code}{g.recorded.statement && <> · <b>{g.recorded.statement}</b></>}</td>
                  <td>{g.route ?? '–'}</td>
                  <td>{g.principal ?? <i>anonymous</i>}</td>
                  <td class="num">{count(g.count)}</td>
                  <td title={g.last}>{ago(g.last)}</td>
                  <td class="why">
                    <div>{g.recorded.detail ?? g.explanation.reason}</div>
                    <small>Now: {g.explanation.effect === 'allow' ? (g.explanation.status === 202 ? 'would be allowed, and held for approval' : 'would be allowed') : g.explanation.reason} <code>{g.sample.method} {g.sample.path}</code></small>
                    {!g.explained_under.agrees && <small class="disagrees" data-testid="disagrees">⚠ {g.explained_under.disagrees}</small>}
                  </td>
                  <td><button type="button" onClick={() => simulate(g)}>Simulate</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Panel>
    </div>
  )
}
