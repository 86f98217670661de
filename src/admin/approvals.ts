// The admin API's approvals (mcp.approvals): list them, and approve or deny one. The approver is the
// person signed in to the console, or the one whose bearer token is in the body ("token": the admin
// token opens the API, the approver's roles decide).
import { APPROVAL_STATUSES, ApprovalStoreError, approverOf, decideApproval, sessionApprover, withApprovers, type ApprovalStatus, type ApprovalStore, type CompiledMcp } from '../agents/index.ts'
import { GatewayError } from '../errors/index.ts'
import type { Runtime } from '../gateway/index.ts'
import type { AdminRoute } from './server.ts'

export function approvalRoutes(runtime: () => Runtime): AdminRoute[] {
  const decide = (decision: 'approve' | 'deny'): AdminRoute => ({
    method: 'POST',
    path: `approvals/{id}/${decision}`,
    // A decision changes what runs: the admin token opens it (admin.read_token gets 403), and the
    // approver's own token in the body decides whether they may.
    access: 'admin',
    handle: async ({ params, body, caller, clientIp }) => {
      const rt = runtime()
      const { mcp, store } = approvalsOf(rt)
      const token = (body as { token?: unknown } | undefined)?.token
      const signedIn = caller?.identity
      const approver = token === undefined && signedIn !== undefined ? sessionApprover(signedIn, rt.access) : await approverOf(token, rt.authenticator, rt.access)
      // The decision's record names the request that made it (it named the MCP endpoint's path).
      const id = params.id ?? ''
      return { body: await fromStore(decideApproval(store, mcp.config, id, decision, approver, mcp.audit, { path: `/api/approvals/${encodeURIComponent(id)}/${decision}`, clientIp })) }
    },
  })
  return [
    {
      method: 'GET',
      path: 'approvals',
      handle: async ({ query }) => {
        const status = query.get('status') ?? undefined
        if (status !== undefined && !APPROVAL_STATUSES.includes(status as ApprovalStatus)) {
          throw new GatewayError('bad_request', { detail: `status is one of ${APPROVAL_STATUSES.join(', ')}.` })
        }
        const { mcp, store } = approvalsOf(runtime())
        return { body: (await fromStore(store.list({ status: status as ApprovalStatus | undefined }))).map((approval) => withApprovers(mcp.config, approval)) }
      },
    },
    {
      method: 'GET',
      path: 'approvals/{id}',
      handle: async ({ params }) => {
        const { mcp, store } = approvalsOf(runtime())
        const approval = await fromStore(store.get(params.id ?? ''))
        if (!approval) throw new GatewayError('route_not_found', { detail: `No approval ${JSON.stringify(params.id ?? '')}.` })
        return { body: withApprovers(mcp.config, approval) }
      },
    },
    decide('approve'),
    decide('deny'),
  ]
}

/**
 * A store the gateway cannot use (a file that is no database, a disk gone read-only, another
 * instance holding its lock): what the store said, its path and why (never a value), as the MCP
 * endpoint tells the agent. It was a bare "The gateway failed to handle this request" (the admin probe).
 */
async function fromStore<T>(work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (err) {
    if (!(err instanceof ApprovalStoreError)) throw err
    throw new GatewayError('internal_error', { detail: `${err.message.charAt(0).toUpperCase()}${err.message.slice(1)}.`, cause: err })
  }
}

function approvalsOf(runtime: Runtime): { mcp: CompiledMcp; store: ApprovalStore } {
  const mcp = runtime.mcp
  if (!mcp?.approvals) throw new GatewayError('route_not_found', { detail: 'No approvals are configured (mcp.approvals).' })
  return { mcp, store: mcp.approvals }
}
