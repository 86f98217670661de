// An explanation (POST /api/explain, or a recorded request's trace) as a person reads it: route,
// identity, each role with the trust rule that granted it (or why not), each statement, the verdict.
import type { Explanation } from '../../src/gateway/explanation-shapes.ts'

/** The reason without the "401 missing_token: " a refusal's reason starts with: the line names them already. */
function reasonOf(d: Explanation['decision']): string {
  const prefix = `${d.status} ${d.code}: `
  return d.code !== null && d.reason.startsWith(prefix) ? d.reason.slice(prefix.length) : d.reason
}

export function ExplanationView({ e }: { e: Explanation }) {
  return (
    <dl class="explanation" data-testid="explanation">
      <dt>Request</dt>
      <dd><code>{e.request.method} {e.request.path}</code> from {e.request.ip}</dd>
      {e.tool && (
        <>
          <dt>Tool</dt>
          <dd data-testid="tool">
            <b><bdi>{e.tool.name}</bdi></b>{' '}
            {e.tool.route ? <>route tool of <b>{e.tool.route.id}</b>: sends <code>{e.tool.route.method} {e.tool.route.path}</code> → {e.tool.route.upstream}</>
              : e.tool.server ? <>tool <bdi>{e.tool.server.tool}</bdi> of MCP server <b>{e.tool.server.name}</b></>
              : <i>no such tool</i>}
            {e.tool.approval && <div data-testid="approval">held for approval by {e.tool.approval.approvers.join(' or ')} (mcp.approvals: {e.tool.approval.tools.join(', ')}; ttl {e.tool.approval.ttl_seconds}s)</div>}
          </dd>
        </>
      )}
      <dt>Route</dt>
      <dd>
        {e.route ? (
          <>
            <b>{e.route.id}</b> <code>{e.route.methods.join(',')} {e.route.path}</code> → {e.route.upstream}
            {e.route.public && ' (public)'}
            {e.route.limits.length > 0 && <> · limits {e.route.limits.join(', ')}</>}
          </>
        ) : 'none matches'}
      </dd>
      {e.identity && (
        <>
          <dt>Identity</dt>
          <dd>
            {/* The token's values isolated (bdi): a direction override in one must not turn the rest of the line around. */}
            issuer {e.identity.issuer ?? <i>unknown (<bdi>{e.identity.iss ?? 'no iss'}</bdi>)</i>}, subject <b><bdi>{e.identity.sub ?? '–'}</bdi></b>
            {e.identity.client_id && <>, client <bdi>{e.identity.client_id}</bdi></>} <small>(from {e.identity.source}; signature not checked)</small>
            {e.identity.problems.map((p) => <div class="problem">! {p.code}: {p.detail}</div>)}
            {e.identity.certificate_bound && <div>bound to the client certificate whose SHA-256 is <code>{e.identity.certificate_bound}</code> (cnf.x5t#S256): not seen here</div>}
          </dd>
        </>
      )}
      {e.roles.length > 0 && (
        <>
          <dt>Roles</dt>
          <dd>
            <ul class="plain">
              {e.roles.map((r) => {
                // A recorded request's roles are those the gateway assumed: a rule matching now does not make one held.
                const granted = r.held ? r.rules.find((rule) => rule.matched) : undefined
                return (
                  <li class={r.held ? 'yes' : 'no'}>
                    {r.held ? '+' : '−'} <b>{r.role}</b>: {granted ? <>granted by <code>{granted.rule}</code></> : <>not held ({r.rules.filter((rule) => !rule.matched).map((rule) => rule.why).join('; ') || 'no trust rule'})</>}
                  </li>
                )
              })}
            </ul>
          </dd>
        </>
      )}
      {e.route && !e.route.public && e.identity && (
        <>
          <dt>Statements</dt>
          <dd>
            {e.statements.length === 0 ? <i>no statement of the roles held names this route</i> : (
              <ul class="plain">
                {e.statements.map((s) => (
                  <li class={s.matched ? (s.effect === 'allow' ? 'yes' : 'no') : 'skip'} data-testid="statement">
                    {s.matched ? '✓' : '·'} {s.effect} <b>{s.sid}</b>{s.route && <> on <code>{s.route}</code></>} <small>(policy {s.policy}, {s.agent ? 'the agent\'s role' : 'role'} {s.roles.join(', ')})</small>
                    {/* A matching statement's why is a note (a deny holding on a claim the token withholds), as bouncer explain prints it. */}
                    {s.matched ? (s.why ? ` matches (${s.why})` : ' matches') : `: ${s.why}`}
                  </li>
                ))}
              </ul>
            )}
          </dd>
        </>
      )}
      <dt>Decision</dt>
      <dd class={`verdict ${e.decision.effect}`} data-testid="decision">
        <b>{e.decision.effect.toUpperCase()}</b> {e.decision.status > 0 && e.decision.status} {e.decision.code} — {reasonOf(e.decision)}
      </dd>
    </dl>
  )
}
