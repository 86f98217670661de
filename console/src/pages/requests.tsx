// The audit log as a paged table; a row opens its decision trace.
import { useEffect, useState } from 'preact/hooks'
import { api, query } from '../api'
import { ExplanationView } from '../explanation'
import { ms, time } from '../format'
import { go, here, setParams } from '../router'
import { Empty, Failure, Panel } from '../ui'
import type { AuditPage, ExplainedUnder, Trace } from '../../../src/admin/console-shapes.ts'
import type { AuditRecord } from '../../../src/audit/fields.ts'

export interface Filters { since: string; until: string; decision: string; status: string; route: string; principal: string }
export const NO_FILTERS: Filters = { since: '24h', until: '', decision: '', status: '', route: '', principal: '' }

export function FilterForm({ value, onChange, children }: { value: Filters; onChange: (f: Filters) => void; children?: preact.ComponentChildren }) {
  const [draft, setDraft] = useState(value)
  const field = (name: keyof Filters, label: string, placeholder = '') => (
    <label>
      {label}
      <input name={name} value={draft[name]} placeholder={placeholder} onInput={(e) => setDraft({ ...draft, [name]: (e.target as HTMLInputElement).value })} />
    </label>
  )
  return (
    <form class="filters" onSubmit={(e) => (e.preventDefault(), onChange(draft))}>
      {field('since', 'since', '1h or a UTC time')}
      {field('until', 'until', 'a UTC time')}
      <label>
        decision
        <select name="decision" value={draft.decision} onChange={(e) => setDraft({ ...draft, decision: (e.target as HTMLSelectElement).value })}>
          <option value="">any</option><option>allow</option><option>deny</option><option>error</option>
        </select>
      </label>
      {field('status', 'status', '403')}
      {field('route', 'route', 'route id')}
      {field('principal', 'principal', 'subject')}
      <button type="submit">Search</button>
      {children}
    </form>
  )
}

export const filterQuery = (f: Filters, extra: Record<string, string | number> = {}) => query({ ...f, ...extra })

export function TraceView({ id, at }: { id: string; at: string }) {
  const [trace, setTrace] = useState<Trace | null>(null)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    setTrace(null)
    api<Trace>(`audit/trace${query({ id, time: at })}`).then(setTrace, setError)
  }, [id, at])
  if (error) return <Failure error={error} />
  if (!trace) return <p class="loading">Loading the trace…</p>
  const r = trace.record
  return (
    <div class="trace" data-testid="trace">
      <dl class="explanation">
        <dt>Recorded</dt>
        <dd>
          <b class={`tag ${r.decision}`}>{r.status} {r.decision}</b> {r.code && <code>{r.code}</code>} {r.statement && <>statement <b>{r.statement}</b></>}
          {r.detail && <div class="detail">{r.detail}</div>}
        </dd>
        <dt>Identity</dt>
        {/* Recorded values isolated (bdi): a direction override in a token's sub must not turn the rest of the line around. */}
        <dd>{r.subject ? <><bdi>{r.subject}</bdi> <small>(<bdi>{r.issuer}</bdi>{r.client_id && <>, client <bdi>{r.client_id}</bdi></>}; {r.credential ?? 'credential unknown'})</small></> : <i>none verified</i>} · roles <bdi>{r.roles.join(', ') || '–'}</bdi></dd>
        <dt>Limit</dt>
        <dd>{r.limit ? <>refused by <b>{r.limit}</b></> : 'no limit refused it'}</dd>
        <dt>Timing</dt>
        <dd>
          {ms(r.duration_ms)} ms in all{r.upstream && <>; upstream <b>{r.upstream}</b> {r.upstream_status === null ? 'gave no answer' : <>answered {r.upstream_status}{r.upstream_ms !== null && <> in {ms(r.upstream_ms)} ms</>}</>}{r.attempts && r.attempts > 1 ? ` after ${r.attempts} tries` : ''}</>}
          {r.upstream_ms !== null && <> · gateway {ms(r.duration_ms - r.upstream_ms)} ms</>}
        </dd>
        <dt>Trace</dt>
        <dd>{r.trace_id ? (trace.trace_url ? <a href={trace.trace_url} target="_blank" rel="noopener noreferrer">{r.trace_id}</a> : <code>{r.trace_id}</code>) : '–'} · request id <code>{r.request_id}</code></dd>
      </dl>
      <h3>The decision, explained under the running config</h3>
      <p class="hint">{underOf(trace.explained_under)}</p>
      <Disagreement under={trace.explained_under} />
      <ExplanationView e={trace.explanation} />
    </div>
  )
}

/** What the explanation read, and under which config: the record stands above it. */
function underOf(u: ExplainedUnder): string {
  const roles = u.roles_from === 'record' ? ', with the roles the gateway assumed' : u.roles_from === 'trust_rules' ? ', with the roles of trust rules' : ''
  return `Config generation ${u.generation} (sha256 ${u.sha256}), from the identity the record keeps (issuer, subject, client)${roles}: a claim it does not keep reads as absent.`
}

/** An explanation that differs from the record says so, and why; what it cannot see is listed either way. */
export function Disagreement({ under }: { under: ExplainedUnder }) {
  return (
    <>
      {!under.agrees && <p class="disagrees" data-testid="disagrees">⚠ Not what was recorded. {under.disagrees}</p>}
      {under.caveats.length > 0 && <ul class="plain hint" data-testid="caveats">{under.caveats.map((c) => <li>{c}</li>)}</ul>}
    </>
  )
}

/** The search a Requests link names (#/requests?since=1h&status=403…); since defaults to 24h. */
export const filtersOf = (p: URLSearchParams): Filters => ({
  since: p.get('since') ?? NO_FILTERS.since, until: p.get('until') ?? '', decision: p.get('decision') ?? '',
  status: p.get('status') ?? '', route: p.get('route') ?? '', principal: p.get('principal') ?? '',
})

/** The record a page of older ones starts after. */
interface Cursor { time: string; id: string; shown: number }

export function RequestsPage() {
  // The search lives in the URL: a reload, back/forward and a shared link keep it.
  const filters = filtersOf(here.value.params)
  const search = filterQuery(filters)
  // Keyset paging: each older page starts after the last row of the one before, so rows written
  // meanwhile never repeat or skip one; the cursors of the pages seen let "newer" go back.
  const [pager, setPager] = useState<{ search: string; cursors: Cursor[] }>({ search, cursors: [] })
  const cursors = pager.search === search ? pager.cursors : []
  const cursor = cursors.at(-1)
  const [answer, setAnswer] = useState<{ path: string; page: AuditPage } | null>(null)
  const [error, setError] = useState<unknown>(null)
  // The open trace is in the URL too (trace=ID&at=TIME): a link to it can be sent, a reload keeps it, back closes it.
  const openId = here.value.params.get('trace')
  const openAt = here.value.params.get('at')
  const setOpen = (r: AuditRecord | null) => setParams({ trace: r?.id ?? null, at: r?.time ?? null })
  const [asked, setAsked] = useState(0)
  const LIMIT = 50
  const path = `audit/page${filterQuery(filters, cursor ? { limit: LIMIT, before: cursor.time, before_id: cursor.id } : { limit: LIMIT })}`
  useEffect(() => {
    let stale = false
    // A failed search clears the rows: those of the previous search would pass for its answer.
    api<AuditPage>(path).then((d) => !stale && (setAnswer({ path, page: d }), setError(null)), (err: unknown) => !stale && (setAnswer(null), setError(err)))
    return () => {
      stale = true
    }
  }, [path, asked])
  // The previous search's rows stay on screen while the new one is asked, marked busy and not ready: they are not its answer.
  const page = answer?.page ?? null
  const current = answer !== null && answer.path === path
  const shownOpen = page?.records.find((r) => r.id === openId)
  // The close button goes with the panel: the keyboard goes back to the request's own button, not to the top of the page.
  const close = () => {
    document.getElementById(`open-${openId}`)?.focus()
    setOpen(null)
  }
  const offset = cursor?.shown ?? 0
  const last = page?.records.at(-1)
  const older = () => last && setPager({ search, cursors: [...cursors, { time: last.time, id: last.id, shown: offset + (page?.records.length ?? 0) }] })
  const newer = () => setPager({ search, cursors: cursors.slice(0, -1) })
  // The same search again still asks again, from the newest page: compared as a search, not as the URL (#/requests and
  // #/requests?since=24h are one search, and going from one to the other asked nothing).
  const submit = (f: Filters) => (filterQuery(f) === search ? (setPager({ search, cursors: [] }), setAsked(asked + 1)) : go('requests', { ...f }))
  return (
    <div class="requests" data-ready={current ? 'true' : undefined} aria-busy={page && !current ? 'true' : undefined}>
      <FilterForm key={search} value={filters} onChange={submit} />
      <Failure error={error} />
      <div class={openId && openAt ? 'split' : ''}>
        <Panel title="Requests" actions={<span class="pager">
          <button type="button" disabled={cursors.length === 0} onClick={newer}>← newer</button>
          <span data-testid="shown">{!page ? '…' : page.records.length === 0 ? 'none' : `${offset + 1}–${offset + page.records.length}`}</span>
          <button type="button" disabled={!page?.more || !last} onClick={older}>older →</button>
        </span>}>
          {page && page.records.length === 0 ? <Empty>No records match.</Empty> : (
            <table class="rows">
              <thead><tr><th>time (UTC)</th><th>status</th><th>request</th><th>route</th><th>principal</th><th>code</th><th class="num">ms</th></tr></thead>
              <tbody>
                {page?.records.map((r) => (
                  // The whole row opens the trace for a mouse; its button for a keyboard and a screen reader (Enter, Space, "expanded").
                  <tr class={`${r.decision}${openId === r.id ? ' open' : ''}`} onClick={() => setOpen(r)} data-testid="row">
                    <td>{time(r.time)}</td><td><b class={`tag ${r.decision}`}>{r.status}<span class="sr-only"> {r.decision}</span></b></td>
                    <td><button type="button" class="link plain" id={`open-${r.id}`} aria-expanded={openId === r.id} onClick={(e) => (e.stopPropagation(), setOpen(r))}><code>{r.method} {r.path}</code></button></td>
                    <td>{r.route ?? '–'}</td><td>{r.subject ?? '–'}</td><td>{r.code ?? ''}</td><td class="num">{ms(r.duration_ms)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Panel>
        {openId && openAt && (
          <Panel title={shownOpen ? `Trace of ${shownOpen.method} ${shownOpen.path}` : 'Trace'} actions={<button type="button" class="link" onClick={close}>close</button>}>
            <TraceView id={openId} at={openAt} />
          </Panel>
        )}
      </div>
    </div>
  )
}
