// The answers of the console's aggregate endpoints (GET /api/overview, /api/denials, the counts in
// GET /api/catalog), as the server computes them (aggregate.ts) and the console reads them
// (console/src/pages/): one description, with no imports, so the browser's build can take its types too.

export interface Overview {
  since: string
  until: string
  bucket_ms: number
  /** Each bucket's start (ms since the epoch), oldest first; every series has one value per bucket. */
  buckets: number[]
  /** `allow`, `deny:CODE`, `error:CODE`: requests per bucket. */
  outcomes: Array<{ key: string; counts: number[] }>
  /** Milliseconds per bucket, of the requests sent upstream: in all (total) and at the upstream; null where none was. */
  latency: { total_p50: Array<number | null>; total_p99: Array<number | null>; upstream_p50: Array<number | null>; upstream_p99: Array<number | null> }
  totals: { requests: number; allow: number; deny: number; error: number }
  top_routes: Array<{ route: string | null; requests: number; denied: number; errors: number }>
  top_principals: Array<{ principal: string | null; requests: number; denied: number }>
  denial_reasons: Array<{ code: string | null; statement: string | null; count: number }>
}

export interface DenialGroup {
  code: string | null
  route: string | null
  principal: string | null
  count: number
  last: string
  /** The newest denial of the group, as recorded (what explaining it again reads: the roles assumed, the agent, the credential). */
  sample: {
    method: string; path: string; statement: string | null; detail: string | null; issuer: string | null; client_id: string | null; source_ip: string; status: number
    roles: string[]; actor: string | null; credential: string | null; limit: string | null
  }
}

/** What the catalog shows beside the config (GET /api/catalog): refusals by limit, and unknown issuers seen. */
export interface AuditCounts {
  /** Requests each limit refused since the time asked. */
  limits: Array<{ limit: string; count: number; last: string }>
  /** Tokens of issuers no config names (drift is in the detail: "differs only by …"). */
  unknown_issuers: Array<{ detail: string | null; count: number; last: string }>
}
