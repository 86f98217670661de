// What the running config offers: routes × roles, issuers and their keys, limits and their use,
// secrets (names and versions, never values), pending approvals.
import { useEffect, useState } from 'preact/hooks'
import { api, ApiError, session } from '../api'
import { ago, count } from '../format'
import { Empty, Failure, Panel } from '../ui'
import type { Catalog, Secrets } from '../../../src/admin/console-shapes.ts'
import type { Approval } from '../../../src/agents/mcp/approval-shapes.ts'

/**
 * Under server.workers each worker fetches an issuer's keys itself; the row shows the worst worker's
 * state, and here which workers differ (only when they do: agreeing workers add nothing to read).
 */
function WorkerStates({ issuer }: { issuer: Catalog['issuers'][number] }) {
  const workers = issuer.workers ?? []
  if (workers.every((w) => w.state === workers[0]?.state && w.last_error === workers[0]?.last_error)) return null
  return (
    <ul class="worker-states">
      {workers.map((w) => <li class={w.state === 'ready' ? 'ok' : 'bad'}>{w.worker}: {w.state}{w.last_error ? ` (${w.last_error})` : ''}</li>)}
    </ul>
  )
}

function Approvals({ pending, unreadable }: { pending: Approval[] | null; unreadable: string | null }) {
  const [items, setItems] = useState<Approval[] | null>(pending)
  const absent = pending === null
  // Their store could not be read: why, not "not configured".
  const [error, setError] = useState<unknown>(unreadable === null ? null : new Error(unreadable))
  const [approver, setApprover] = useState('')
  const [decided, setDecided] = useState<string | null>(null)
  const load = () => api<Approval[]>('approvals?status=pending').then(setItems, setError)
  // A person signed in is the approver; with the admin token, the approver's own token (one of the rule's roles) decides.
  const signedIn = session.value?.via === 'sign_in'
  const ready = signedIn || approver.trim() !== ''
  const decide = (a: Approval, verdict: 'approve' | 'deny') =>
    api(`approvals/${encodeURIComponent(a.id)}/${verdict}`, { method: 'POST', body: signedIn ? {} : { token: approver.trim() }, tokenInBody: !signedIn }).then(
      () => (setError(null), setDecided(`${verdict === 'approve' ? 'Approved' : 'Denied'} ${a.tool} for ${a.subject}.`), load()),
      (err: unknown) => setError(err instanceof ApiError && err.status === 401 && !signedIn ? new Error(`The approver's token was refused: ${err.message}`) : err),
    )
  return (
    <Panel title="Pending approvals">
      <Failure error={error} />
      {/* The row goes away when decided: the decision is said too, where a screen reader hears it. */}
      <p class="hint" role="status">{decided}</p>
      {unreadable !== null ? null : absent ? <Empty>No approvals on this gateway (mcp.approvals is not configured).</Empty>
        : items && items.length === 0 ? <Empty>Nothing waits for approval.</Empty> : (
          <>
            <table class="rows">
              <thead><tr><th>tool</th><th>caller</th><th>approvers</th><th>expires</th><th><span class="sr-only">decide</span></th></tr></thead>
              <tbody>
                {items?.map((a) => (
                  <tr>
                    <td><code>{a.tool}</code></td><td>{a.subject}</td><td>{a.approvers.join(', ')}</td><td>{a.expires_at}</td>
                    <td>{session.value?.may.approve && <><button type="button" disabled={!ready} onClick={() => decide(a, 'approve')}>Approve</button> <button type="button" disabled={!ready} onClick={() => decide(a, 'deny')}>Deny</button></>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {session.value?.may.approve && !signedIn && (
              <label class="inline">your token (an approver role) <input type="password" autocomplete="off" value={approver} onInput={(e) => setApprover((e.target as HTMLInputElement).value)} /></label>
            )}
          </>
        )}
    </Panel>
  )
}

export function CatalogPage() {
  const [catalog, setCatalog] = useState<Catalog | null>(null)
  const [secrets, setSecrets] = useState<Secrets | null>(null)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    api<Catalog>('catalog').then(setCatalog, setError)
    api<Secrets>('secrets').then(setSecrets, setError)
  }, [])
  return (
    <div class="catalog" data-ready={catalog ? 'true' : undefined}>
      <Failure error={error} />
      {catalog && (
        <>
          <Panel title="Routes × roles">
            <div class="scroll">
              <table class="matrix" data-testid="matrix">
                <thead><tr><th>route</th><th>target</th>{catalog.roles.map((r) => <th class="role">{r}</th>)}</tr></thead>
                <tbody>
                  {catalog.routes.map((route) => (
                    <tr>
                      <th scope="row"><b>{route.id}</b><br /><small><code>{route.methods.join(',')} {route.path}</code></small></th>
                      <td><small>{route.target.kind} {route.target.name ?? ''}</small></td>
                      {catalog.roles.map((role) => {
                        if (route.public) return <td class="cell public">public</td>
                        const cell = catalog.matrix[route.id]?.[role]
                        if (!cell || (cell.allow.length === 0 && cell.deny.length === 0)) return <td class="cell none"><span aria-hidden="true">–</span><span class="sr-only">none</span></td>
                        // Struck through and red for the eye; said in words for a screen reader, which reads neither.
                        return (
                          <td class={`cell ${cell.allow.length > 0 ? 'allow' : 'deny'}`} title={cell.conditional ? 'some statements have conditions (source IP, claims)' : ''}>
                            {cell.allow.join(' ')}{cell.deny.length > 0 && <s>{cell.allow.length > 0 && ' '}<span class="sr-only">denied: </span>{cell.deny.join(' ')}</s>}
                            {cell.conditional && <><span aria-hidden="true">*</span><span class="sr-only"> (with conditions)</span></>}
                          </td>
                        )
                      })}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <p class="hint">Methods each role may call (struck: denied outright); * some statements have conditions.</p>
          </Panel>
          <div class="grid2">
            <Panel title="Issuers">
              {catalog.issuers.length === 0 ? <Empty>No issuers configured.</Empty> : (
                <table class="rows">
                  <thead><tr><th>name</th><th>state</th><th>keys</th><th>last refresh</th></tr></thead>
                  <tbody>
                    {catalog.issuers.map((i) => (
                      <tr>
                        <td><b>{i.name}</b><br /><small>{i.issuer ?? i.type}</small></td>
                        <td class={i.state === 'ready' ? 'ok' : 'bad'}>{i.state}{i.last_error && <div class="problem">{i.last_error}</div>}<WorkerStates issuer={i} /></td>
                        <td>{i.keys.length === 0 ? '–' : i.keys.map((k) => <div><code>{k.kid ?? '(no kid)'}</code> {k.alg ?? k.kty}</div>)}</td>
                        <td>{ago(i.last_refresh)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              <h3>Unknown issuers seen (last hour)</h3>
              {/* The audit log could not be read: why, not "none seen". */}
              {catalog.drift === null ? <Failure error={new Error(catalog.audit_error ?? 'The audit log cannot be read.')} /> : catalog.drift.length === 0 ? <Empty>None: every token named a configured issuer.</Empty> : (
                <ul class="plain">{catalog.drift.map((d) => <li>{count(d.count)}× <bdi>{d.detail}</bdi> <small>({ago(d.last)})</small></li>)}</ul>
              )}
            </Panel>
            <Panel title="Limits">
              {catalog.limits.length === 0 ? <Empty>No limits configured.</Empty> : (
                <table class="rows">
                  <thead><tr><th>limit</th><th>key</th><th>rate / quota</th><th>routes</th><th class="num">refused, last hour</th></tr></thead>
                  <tbody>
                    {catalog.limits.map((l) => (
                      <tr>
                        <td><b>{l.name}</b></td><td>{l.key}</td>
                        <td>{[l.rate && `${l.rate}${l.burst ? ` (burst ${l.burst})` : ''}`, l.quota && `quota ${l.quota}`].filter(Boolean).join(', ')}</td>
                        <td>{l.routes.join(', ') || '–'}</td><td class="num">{l.refused_1h === null ? <span title={catalog.audit_error ?? ''}>–</span> : count(l.refused_1h)}{l.last_refused && <small> ({ago(l.last_refused)})</small>}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </Panel>
            <Panel title="Secrets">
              {!secrets ? null : secrets.store === null ? <Empty>No secrets store configured.</Empty> : secrets.secrets.length === 0 ? <Empty>The {secrets.store} store holds no secrets.</Empty> : (
                <table class="rows" data-testid="secrets">
                  <thead><tr><th>name</th><th>versions</th></tr></thead>
                  <tbody>
                    {secrets.secrets.map((s) => (
                      <tr><td><b>{s.name}</b></td><td>{s.versions.map((v) => `v${v.version}${v.label ? ` (${v.label})` : ''}`).join(', ') || '–'}</td></tr>
                    ))}
                  </tbody>
                </table>
              )}
              <p class="hint">Names and versions only: no value ever leaves the gateway.</p>
            </Panel>
            <Approvals pending={catalog.approvals} unreadable={catalog.approvals_error} />
          </div>
        </>
      )}
    </div>
  )
}
