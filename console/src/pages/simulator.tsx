// explain for any request (claims, or a pasted token decoded here and on the server, never stored),
// and a replay of the recorded requests against a draft config.
import { useState } from 'preact/hooks'
import { api, session } from '../api'
import { ExplanationView } from '../explanation'
import { prefill } from '../state'
import { Empty, Failure, Panel } from '../ui'
import type { ReplayResult } from '../../../src/admin/console-shapes.ts'
import type { Explanation, Verdict } from '../../../src/gateway/explanation-shapes.ts'

/** A JWT's claims, for showing only: the signature is not checked (nor by the server's explain). */
function decodeToken(token: string): Record<string, unknown> | null {
  try {
    const part = token.trim().split('.')[1] ?? ''
    const bytes = Uint8Array.from(atob(part.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0))
    return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>
  } catch {
    return null
  }
}

function Explain() {
  const start = prefill.peek()
  const [method, setMethod] = useState(start?.method ?? 'GET')
  const [path, setPath] = useState(start?.path ?? '/')
  const [ip, setIp] = useState(start?.ip ?? '127.0.0.1')
  // A request, or an MCP tool call (POST /api/explain's tool: decided as tools/call decides it).
  const [tool, setTool] = useState<string | null>(start?.tool ?? null)
  const [mode, setMode] = useState<'claims' | 'token'>('claims')
  // A recorded request without claims is simulated without them, not with an empty iss and sub.
  const [claims, setClaims] = useState(start ? (start.claims ? JSON.stringify(start.claims, null, 2) : '') : '{\n  "iss": "",\n  "sub": ""\n}')
  const [token, setToken] = useState('')
  const [result, setResult] = useState<Explanation | null>(null)
  const [error, setError] = useState<unknown>(null)
  const run = async (e: Event) => {
    e.preventDefault()
    setError(null)
    try {
      const body: Record<string, unknown> = tool === null ? { method, path, ip } : { tool, ip }
      if (mode === 'token') body.token = token.trim()
      else if (claims.trim() !== '') Object.assign(body, { claims: JSON.parse(claims) as unknown }, start?.credential && tool === null ? { credential: start.credential } : {})
      setResult(await api<Explanation>('explain', { method: 'POST', body }))
    } catch (err) {
      setError(err instanceof SyntaxError ? new Error(`The claims are not JSON: ${err.message}`) : err)
    }
  }
  const decoded = mode === 'token' && token.trim() ? decodeToken(token) : null
  return (
    <Panel title="Explain a request">
      <form class="simulate" onSubmit={run}>
        <div class="row" role="radiogroup" aria-label="Explain what">
          <label class="inline"><input type="radio" name="what" checked={tool === null} onChange={() => setTool(null)} /> a request</label>
          <label class="inline"><input type="radio" name="what" checked={tool !== null} onChange={() => setTool(tool ?? '')} /> an MCP tool call</label>
        </div>
        {tool !== null ? (
          <div class="row">
            <label class="grow">tool<input name="tool" value={tool} placeholder="get_daily_report, or SERVER__TOOL" onInput={(e) => setTool((e.target as HTMLInputElement).value)} /></label>
            <label>source IP<input name="ip" value={ip} onInput={(e) => setIp((e.target as HTMLInputElement).value)} /></label>
          </div>
        ) : (
        <div class="row">
          <label>method<select name="method" value={method} onChange={(e) => setMethod((e.target as HTMLSelectElement).value)}>
            {['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].map((m) => <option>{m}</option>)}
          </select></label>
          <label class="grow">path<input name="path" value={path} onInput={(e) => setPath((e.target as HTMLInputElement).value)} /></label>
          <label>source IP<input name="ip" value={ip} onInput={(e) => setIp((e.target as HTMLInputElement).value)} /></label>
        </div>
        )}
        <div class="row" role="radiogroup" aria-label="Explain with">
          <label class="inline"><input type="radio" name="mode" checked={mode === 'claims'} onChange={() => setMode('claims')} /> claims</label>
          <label class="inline"><input type="radio" name="mode" checked={mode === 'token'} onChange={() => setMode('token')} /> a token (decoded, never stored)</label>
        </div>
        {mode === 'claims' ? (
          <>
            {start?.note && <p class="hint" data-testid="no-claims">{start.note}</p>}
            {start?.credential && <p class="hint">The claims of a client certificate: iss is the subject DN of its CA, sub its URI SAN or CN.</p>}
            <label>claims (JSON)<textarea name="claims" rows={6} value={claims} placeholder="no claims: explained as a request without a token" onInput={(e) => setClaims((e.target as HTMLTextAreaElement).value)} spellcheck={false} /></label>
          </>
        ) : (
          <>
            <label>token<textarea name="token" rows={4} value={token} onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)} spellcheck={false} autocomplete="off" /></label>
            {decoded && <pre class="claims">{JSON.stringify(decoded, null, 2)}</pre>}
          </>
        )}
        <button type="submit">Explain</button>
      </form>
      <Failure error={error} />
      {/* There before the answer, so a screen reader says the answer when it comes. */}
      <div aria-live="polite" data-testid="explain-result">{result && <ExplanationView e={result} />}</div>
    </Panel>
  )
}

function Replay() {
  const [draft, setDraft] = useState('')
  const [hours, setHours] = useState('1')
  const [result, setResult] = useState<ReplayResult | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const admin = session.value?.access === 'admin'
  const run = async (e: Event) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      setResult(await api<ReplayResult>('replay', { method: 'POST', body: { config: draft, hours: Number(hours) }, accept: [422] }))
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }
  const upload = async (e: Event) => {
    const file = (e.target as HTMLInputElement).files?.[0]
    if (file) setDraft(await file.text())
  }
  const verdict = (v: Verdict) => <><b class={`tag ${v.effect}`}>{v.effect}</b> {v.code ?? ''} {v.statement && <code>{v.statement}</code>}</>
  return (
    <Panel title="Replay recorded requests against a draft config">
      <form class="simulate" onSubmit={run}>
        <p class="hint">Paste or upload the whole draft bouncer.yaml. Every recorded request of the last hours is decided again, under the running config and under the draft; each decision that changes is listed.</p>
        <label>draft config (YAML)<textarea name="draft" rows={10} value={draft} onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)} spellcheck={false} placeholder="routes: …" /></label>
        <div class="row">
          <label class="inline">file <input type="file" accept=".yaml,.yml,text/yaml" onChange={upload} /></label>
          <label class="inline">last <input name="hours" class="short" value={hours} onInput={(e) => setHours((e.target as HTMLInputElement).value)} /> hours</label>
          <button type="submit" disabled={!admin || busy || draft.trim() === ''}>{busy ? 'Replaying…' : 'Replay'}</button>
          {!admin && <small>Replay reads a config on the gateway: admin access only.</small>}
        </div>
      </form>
      <Failure error={error} />
      {result && !result.ok && <ul class="error">{result.errors.map((line) => <li>{line}</li>)}</ul>}
      {result && result.ok && (
        <div data-testid="replay">
          <p>{result.scanned} records read ({result.distinct} distinct requests){result.truncated && ', the newest only'}: <b>{result.changes_total}</b> {result.changes_total === 1 ? 'decision changes' : 'decisions change'}{result.changes_truncated && ` (the first ${result.changes.length} listed: refusals first, then the most requests)`}. <small>{result.note}</small></p>
          {result.changes.length === 0 ? <Empty>No decision changes.</Empty> : (
            <table class="rows">
              <thead><tr><th>request</th><th>principal</th><th class="num">requests</th><th>now</th><th>with the draft</th><th>why</th></tr></thead>
              <tbody>
                {result.changes.map((c) => (
                  <tr data-testid="change">
                    <td><code>{c.method} {c.path}</code></td><td>{c.principal ?? '–'}</td><td class="num">{c.requests}</td>
                    <td>{verdict(c.before)}</td><td>{verdict(c.after)}</td><td class="why">{c.after.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </Panel>
  )
}

export function SimulatorPage() {
  return (
    <div class="simulator" data-ready="true">
      <Explain />
      <Replay />
    </div>
  )
}
