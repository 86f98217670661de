// Audit search with the CLI's filters, export of the current filter, and the chain's state.
import { useEffect, useState } from 'preact/hooks'
import { api, download, session, type Saved } from '../api'
import { ago, count, time } from '../format'
import { Empty, Failure, Panel } from '../ui'
import { go, here } from '../router'
import { FilterForm, filterQuery, filtersOf, type Filters } from './requests'
import { summarizeVerification } from '../verification'
import type { AuditPage as RecordsPage, Verification } from '../../../src/admin/console-shapes.ts'
import type { AuditHead } from '../../../src/audit/chain-shapes.ts'
import type { AuditRecord } from '../../../src/audit/fields.ts'

function Chain() {
  const [head, setHead] = useState<AuditHead | null>(null)
  const [headError, setHeadError] = useState<unknown>(null)
  const [result, setResult] = useState<Verification | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  useEffect(() => void api<AuditHead>('audit/head').then(setHead, setHeadError), [])
  const verify = async () => {
    setBusy(true)
    setError(null)
    try {
      setResult(await api<Verification>('audit/verify', { method: 'POST' }))
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }
  const summary = result ? summarizeVerification(result) : null
  return (
    <Panel title="The chain" actions={session.value?.may.verify ? <button type="button" onClick={verify} disabled={busy} data-testid="verify">{busy ? 'Verifying…' : 'Verify now'}</button> : <small>verify: admin only</small>}>
      {headError ? <Failure error={headError} /> : head && (
        <dl class="explanation">
          {/* With server.workers each worker writes its own chain: the head's top-level one is only the first's. */}
          {(head.workers && head.workers.length > 0 ? head.workers : [{ worker: null, chain: head.chain, head: head.head, checkpoint: head.checkpoint }]).map((w) => (
            <>
              <dt>{w.worker === null ? "This gateway's chain" : `Worker ${w.worker}'s chain`}</dt>
              <dd data-testid="chain"><code>{w.chain}</code>: {count(w.head.count)} records, head <code>{w.head.hash.slice(0, 16)}…</code></dd>
              <dt>Latest checkpoint</dt>
              <dd>{w.checkpoint ? <>record {count(w.checkpoint.count)}, signed {ago(w.checkpoint.time)} by key <code>{w.checkpoint.kid.slice(0, 12)}…</code></> : 'none yet'}</dd>
            </>
          ))}
          {/* A worker that gave no head in time (busy, stuck) or is not running (restarting) is named, not silently left out. */}
          {head.workers_unanswered?.map((w) => (
            <>
              <dt>{`Worker ${w.worker}'s chain`}</dt>
              <dd data-testid="chain-unanswered">not known now: {w.why}</dd>
            </>
          ))}
        </dl>
      )}
      <Failure error={error} />
      {/* A verification takes a while: its verdict is said when it comes. */}
      <div role="status">
        {summary && (
          <div class={`verdict ${summary.ok ? 'allow' : 'deny'}`} data-testid="verification">
            {summary.headline}
            {summary.breaks.length > 0 && <ul>{summary.breaks.map((b) => <li>{b}</li>)}</ul>}
            {summary.notes.length > 0 && <ul class="notes" data-testid="verification-notes">{summary.notes.map((n) => <li>{n}</li>)}</ul>}
          </div>
        )}
      </div>
    </Panel>
  )
}

export function AuditPage() {
  // The search lives in the URL, as on the Requests page: a reload, back/forward and a shared link keep it (and its export).
  const filters = filtersOf(here.value.params)
  const search = filterQuery(filters)
  const [answer, setAnswer] = useState<{ search: string; rows: AuditRecord[]; more: boolean } | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [saved, setSaved] = useState<Saved | null>(null)
  const [asked, setAsked] = useState(0)
  useEffect(() => {
    let stale = false
    // A failed search clears the rows: those of the previous search would pass for its answer.
    api<RecordsPage>(`audit/page${filterQuery(filters, { limit: 100 })}`).then((p) => !stale && (setAnswer({ search, rows: p.records, more: p.more }), setError(null)), (err: unknown) => !stale && (setAnswer(null), setError(err)))
    return () => {
      stale = true
    }
  }, [search, asked])
  // The previous search's rows stay on screen while the new one is asked, marked busy and not ready: they are not its answer.
  const rows = answer?.rows ?? null
  const more = answer?.more ?? false
  const current = answer !== null && answer.search === search
  // The same search again still asks again (compared as a search: #/audit and #/audit?since=24h are one).
  const submit = (f: Filters) => (filterQuery(f) === search ? setAsked(asked + 1) : go('audit', { ...f }))
  const save = (format: 'csv' | 'ndjson') => download(`audit/export${filterQuery(filters, { format })}`).then(setSaved, setError)
  return (
    <div class="audit" data-ready={current ? 'true' : undefined} aria-busy={rows && !current ? 'true' : undefined}>
      <Chain />
      <Panel title="Search" actions={<>
        <button type="button" onClick={() => save('csv')} data-testid="export-csv">Export CSV</button>
        <button type="button" onClick={() => save('ndjson')} data-testid="export-ndjson">Export NDJSON</button>
      </>}>
        <FilterForm key={search} value={filters} onChange={submit} />
        <p class="hint" role="status" data-testid="saved">{saved && (saved.truncatedAt === null
          ? `Saved ${saved.name}: every record of this filter.`
          : `Saved ${saved.name}: the newest ${count(saved.truncatedAt)} records only; more match: narrow the filter (a shorter range) and export again.`)}</p>
        <Failure error={error} />
        {more && rows && <p class="hint" data-testid="more">The newest {count(rows.length)} shown; more match: narrow the filter, or export them all.</p>}
        {rows && rows.length === 0 ? <Empty>No records match.</Empty> : (
          <table class="rows">
            <thead><tr><th>time (UTC)</th><th>status</th><th>decision</th><th>request</th><th>route</th><th>subject</th><th>why</th></tr></thead>
            <tbody>
              {rows?.map((r) => (
                <tr class={r.decision}>
                  <td>{time(r.time)}</td><td>{r.status}</td><td>{r.decision}</td><td><code>{r.method} {r.path}</code></td><td>{r.route ?? '–'}</td>
                  <td>{r.subject ?? '–'}</td><td>{r.code ? `${r.code}${r.limit ? ` (${r.limit})` : r.statement ? ` (${r.statement})` : ''}` : (r.statement ?? '')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Panel>
    </div>
  )
}
