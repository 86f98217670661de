// An approval as the store keeps it (approvals.ts) and the admin API answers it (GET /api/approvals,
// the catalog's pending ones), and the console reads it (console/src/pages/catalog.tsx): one
// description, with no imports, so the browser's build can take its types too.

/** Every status, as the admin API's `?status=` and `bouncer approvals list --status` take them. */
export const APPROVAL_STATUSES = ['pending', 'approved', 'denied', 'used', 'expired'] as const
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number]

export interface Approval {
  id: string
  tool: string
  /** The caller: the provider that vouched for the subject (for an exchanged token, the user's, not the gateway) and `sub`. */
  issuer: string
  subject: string
  /** The agent acting for the subject (`iss sub` of its token), or null: another agent's same call is another approval. */
  actor: string | null
  args_sha256: string
  /** The roles that may decide (the matching rule's approvers). */
  approvers: string[]
  status: ApprovalStatus
  created_at: string
  expires_at: string
  decided_by: string | null
  decided_at: string | null
}
