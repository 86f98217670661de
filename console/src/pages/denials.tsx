// Denials grouped by code × route × principal, each with its explanation and a request to simulate.
import { useEffect, useState } from 'preact/hooks'
import { api, query } from '../api'
import { ago, count } from '../format'
import { go } from '../router'
import { prefill } from '../state'
import { Empty, Failure, Panel } from '../ui'
import type { ExplainedDenial } from '../../../src/admin/console-shapes.ts'

const RANGES = ['1h', '24h', '7d', '30d']

export function DenialsPage() {
  const [since, setSince] = useState('24h')
  const [groups, setGroups] = useState<ExplainedDenial[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    api<ExplainedDenial[]>(`denials${query({ since })}`).then((g) => (setGroups(g), setError(null)), setError)
  }, [since])
  const simulate = (g: ExplainedDenial) => {
    // No claims: the request had no verified identity (no token, or one that was rejected), so none are made up.
    prefill.value = g.simulate.claims ? g.simulate : { ...g.simulate, note: `The recorded request had no verified identity (${g.code ?? 'no code'}): paste a token or claims to try one.` }
    go('simulator')
  }
  return (
    <div class="denials" data-ready={groups ? 'true' : undefined}>
      <div class="toolbar">
        <span class="ranges" role="group" aria-label="Range">
          {RANGES.map((r) => <button type="button" class={r === since ? 'on' : ''} onClick={() => setSince(r)}>{r}</button>)}
        </span>
      </div>
      <Failure error={error} />
      <Panel title="Denials by code × route × principal">
        {groups && groups.length === 0 ? <Empty>No denials in this range.</Empty> : (
          <table class="rows">
            <thead><tr><th>code</th><th>route</th><th>principal</th><th class="num">count</th><th>last</th><th>why</th><th /></tr></thead>
            <tbody>
              {groups?.map((g) => (
                <tr data-testid="denial">
                  <td><b class="tag deny">{g.sample.status}</b> {g.code}</td>
                  <td>{g.route ?? '–'}</td>
                  <td>{g.principal ?? <i>anonymous</i>}</td>
                  <td class="num">{count(g.count)}</td>
                  <td title={g.last}>{ago(g.last)}</td>
                  <td class="why">
                    <div>{g.sample.detail ?? g.explanation.reason}</div>
                    <small>Now: {g.explanation.effect === 'allow' ? 'would be allowed' : g.explanation.reason} <code>{g.sample.method} {g.sample.path}</code></small>
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
