// An approval as the store keeps it (approvals.ts) and the admin API answers it (GET /api/approvals,
// the catalog's pending ones), and the console reads it (console/src/pages/catalog.tsx): one
// description, with no imports, so the browser's build can take its types too.

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'used' | 'expired'

export interface Approval {
  id: string
  tool: string
  /** The caller: `iss` and `sub` of the identity that asked. */
  issuer: string
  subject: string
  args_sha256: string
  /** The roles that may decide (the matching rule's approvers). */
  approvers: string[]
  status: ApprovalStatus
  created_at: string
  expires_at: string
  decided_by: string | null
  decided_at: string | null
}
