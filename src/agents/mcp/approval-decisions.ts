// An approver's decision on a pending tool call: who may decide (a role in the rule's `approvers`,
// and never the caller who asked, nor the agent that asked for it: four eyes), the store's answer, and the audit record of it.
import type { McpConfig } from '../../config/index.ts'
import { GatewayError, truncateClientValue } from '../../errors/index.ts'
import { inspectHeaders } from '../../http/index.ts'
import type { Authenticator } from '../../identity/index.ts'
import type { AccessControl } from '../../access/index.ts'
import { actorOf, subjectIssuer, type CredentialKind, type Identity, type RecordAudit } from '../../request/index.ts'
import type { Approval, ApprovalStore, Decision } from './approvals.ts'
import { approvalRuleFor, auditFacts } from './tool-calls.ts'

export interface Approver {
  identity: Identity
  roles: readonly string[]
  /** How the approver proved it: their bearer token, or their console session. */
  credential: CredentialKind
}

/** The person behind a bearer token, as the gateway's routes would take it (their issuers and audiences). */
export async function approverOf(token: unknown, authenticator: Authenticator, access: AccessControl): Promise<Approver> {
  if (typeof token !== 'string' || token === '') {
    throw new GatewayError('missing_token', { detail: 'Deciding an approval needs the approver\'s bearer token in "token".' })
  }
  const rawHeaders = ['authorization', `Bearer ${token}`]
  const input = { headers: inspectHeaders(rawHeaders, null), rawHeaders, query: '', socket: {} as never }
  const { identity } = await authenticator.authenticate(input, ['bearer'])
  // A person decides, with their own token: one an agent holds for them (token exchange, or an
  // `act` claim) let that agent approve another's call with the person's approver role.
  if (identity.actor) {
    throw new GatewayError('policy_denied', { detail: `Deciding an approval needs the approver's own token; this one is agent "${truncateClientValue(identity.actor.sub)}"'s acting for "${truncateClientValue(identity.sub)}".` })
  }
  return { identity, roles: access.resolver.rolesFor(identity), credential: 'bearer' }
}

/** A person signed in to the console (their session, already checked): the approver themself. */
export function sessionApprover(identity: Identity, access: AccessControl): Approver {
  return { identity, roles: access.resolver.rolesFor(identity), credential: 'session' }
}

/**
 * `request`: the admin API request that decides, which the decision's audit record names (path, the
 * caller's address). `rules`: mcp.approvals as the running config has them.
 */
export async function decideApproval(store: ApprovalStore, rules: Pick<McpConfig, 'approvals'>, id: string, decision: Decision, approver: Approver, audit: RecordAudit, request: { path: string; clientIp: string }): Promise<Approval> {
  const started = performance.now()
  const approval = await store.get(id)
  if (!approval) throw new GatewayError('route_not_found', { detail: `No approval ${JSON.stringify(id)}.` })
  const { approvers } = withApprovers(rules, approval)
  if (!approver.roles.some((role) => approvers.includes(role))) {
    throw new GatewayError('policy_denied', { detail: `Approval ${id} is decided by ${approvers.join(' or ')}; ${approver.identity.sub} holds ${approver.roles.join(', ') || 'no role'}.` })
  }
  if (isCallerOf(approval, approver.identity)) {
    throw new GatewayError('policy_denied', { detail: 'A caller cannot approve its own tool call.' })
  }
  // The roles that made the decision count, kept with it: a call takes the approval only while one
  // of them is among the rule's approvers (a reload that drops them leaves it uncounted).
  const result = await store.decide(id, decision, { name: `${approver.identity.sub} (${approver.identity.iss})`, roles: approver.roles.filter((role) => approvers.includes(role)) })
  if (!result.ok) {
    throw new GatewayError('bad_request', { detail: `Approval ${id} is ${result.approval?.status ?? 'gone'}: a decided or expired approval is final.` })
  }
  audit(auditFacts(
    { identity: approver.identity, credential: approver.credential, roles: approver.roles, clientIp: request.clientIp, userAgent: null },
    { tool: approval.tool, argsSha256: approval.args_sha256, args: null },
    request.path,
    started,
    { route: `mcp:${approval.tool}`, status: 200, decision: decision === 'approve' ? 'allow' : 'deny', code: null, statement: null, note: `Approval ${id} ${decision === 'approve' ? 'approved' : 'denied'} for ${approval.subject}.` },
  ))
  return withApprovers(rules, result.approval)
}

/**
 * The approval with the approvers its tool's rule names now, who decide it: it kept those of when it
 * was filed, so a role a reload took out of the rule still approved the calls waiting, the one put in
 * could not, and the console showed the old ones (a probe). The stored ones stand for a tool no rule
 * holds any more.
 */
export function withApprovers(rules: Pick<McpConfig, 'approvals'>, approval: Approval): Approval {
  const now = approvalRuleFor(rules, approval.tool)?.approvers
  return now === undefined ? approval : { ...approval, approvers: [...now] }
}

/**
 * Four eyes: the subject who asked, and on an on-behalf-of call the agent that made it (the
 * approval's actor), whether it comes with its own token or acting for someone else. The agent was
 * left out, and approved its own call with its service account's token where that held an
 * approver role (found by an adversarial probe).
 */
function isCallerOf(approval: Approval, identity: Identity): boolean {
  if (subjectIssuer(identity) === approval.issuer && identity.sub === approval.subject) return true
  if (approval.actor === null) return false
  return approval.actor === `${identity.iss} ${identity.sub}` || approval.actor === `${subjectIssuer(identity)} ${identity.sub}` || approval.actor === actorOf(identity)
}
