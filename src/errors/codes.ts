// Every error the gateway answers itself, with its HTTP status and problem title (SPEC "Errors").
// The README's error table is checked against this list by test/unit/errors/codes.test.ts.
export const ERROR_CODES = {
  bad_request: { status: 400, title: 'Bad request' },
  bad_path: { status: 400, title: 'Bad path' },
  missing_token: { status: 401, title: 'Missing token' },
  malformed_token: { status: 401, title: 'Malformed token' },
  token_expired: { status: 401, title: 'Token expired' },
  token_not_yet_valid: { status: 401, title: 'Token not yet valid' },
  issuer_unknown: { status: 401, title: 'Unknown issuer' },
  audience_mismatch: { status: 401, title: 'Audience mismatch' },
  algorithm_not_allowed: { status: 401, title: 'Algorithm not allowed' },
  key_not_found: { status: 401, title: 'Signing key not found' },
  signature_invalid: { status: 401, title: 'Invalid signature' },
  claim_missing: { status: 401, title: 'Required claim missing' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  no_role: { status: 403, title: 'No role' },
  policy_denied: { status: 403, title: 'Denied by policy' },
  route_not_found: { status: 404, title: 'Route not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  request_timeout: { status: 408, title: 'Request timeout' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  headers_too_large: { status: 431, title: 'Request headers too large' },
  rate_limited: { status: 429, title: 'Rate limited' },
  quota_exceeded: { status: 429, title: 'Quota exceeded' },
  internal_error: { status: 500, title: 'Internal error' },
  upstream_unavailable: { status: 502, title: 'Upstream unavailable' },
  upstream_error: { status: 502, title: 'Upstream error' },
  upstream_saturated: { status: 503, title: 'Upstream saturated' },
  limits_unavailable: { status: 503, title: 'Limits store unavailable' },
  identity_provider_unavailable: { status: 503, title: 'Identity provider unavailable' },
  upstream_timeout: { status: 504, title: 'Upstream timeout' },
} as const satisfies Record<string, { status: number; title: string }>

export type ErrorCode = keyof typeof ERROR_CODES

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value)
}
