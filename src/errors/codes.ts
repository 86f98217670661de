// Every error the gateway answers itself, with its HTTP status and problem title (SPEC "Errors").
// The README's error table is checked against this list by test/unit/errors/codes.test.ts.
// `oauth`: a code of the token endpoint (RFC 6749 §5.2, RFC 8693 §2.2.2), answered in OAuth's
// JSON shape ({"error", "error_description"}) rather than as problem+json (respond.ts).
export const ERROR_CODES = {
  bad_request: { status: 400, title: 'Bad request' },
  bad_path: { status: 400, title: 'Bad path' },
  invalid_parameter: { status: 400, title: 'Invalid parameter' },
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
  token_revoked: { status: 401, title: 'Token revoked' },
  api_key_invalid: { status: 401, title: 'Invalid API key' },
  api_key_revoked: { status: 401, title: 'API key revoked' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  client_cert_required: { status: 401, title: 'Client certificate required' },
  session_required: { status: 401, title: 'Session required' },
  session_expired: { status: 401, title: 'Session expired' },
  no_role: { status: 403, title: 'No role' },
  policy_denied: { status: 403, title: 'Denied by policy' },
  untrusted_proxy: { status: 403, title: 'Untrusted proxy' },
  cors_origin_denied: { status: 403, title: 'Cross-origin request denied' },
  invalid_request: { status: 400, title: 'Invalid token request', oauth: true },
  invalid_grant: { status: 400, title: 'Invalid grant', oauth: true },
  unauthorized_client: { status: 400, title: 'Unauthorized client', oauth: true },
  invalid_scope: { status: 400, title: 'Invalid scope', oauth: true },
  invalid_target: { status: 400, title: 'Invalid target', oauth: true },
  unsupported_grant_type: { status: 400, title: 'Unsupported grant type', oauth: true },
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
  function_error: { status: 502, title: 'Function error' },
  datasource_error: { status: 502, title: 'Datasource error' },
  upstream_saturated: { status: 503, title: 'Upstream saturated' },
  limits_unavailable: { status: 503, title: 'Limits store unavailable' },
  identity_provider_unavailable: { status: 503, title: 'Identity provider unavailable' },
  audit_unavailable: { status: 503, title: 'Audit log unavailable' },
  upstream_timeout: { status: 504, title: 'Upstream timeout' },
  function_timeout: { status: 504, title: 'Function timeout' },
  query_timeout: { status: 504, title: 'Query timeout' },
} as const satisfies Record<string, { status: number; title: string; oauth?: true }>

export type ErrorCode = keyof typeof ERROR_CODES

/**
 * A code an audit record may carry that is no error answer: `approval_pending`, a tool call held
 * for its approvers (answered 202 with a pending_approval result, decision `deny` as it did not run;
 * without a code the console counted it among denials as `deny:none`). The audit worker's own
 * records (`chain_restarted`, `records_lost`) are written there (audit/chain-head.ts).
 */
export type RecordCode = ErrorCode | 'approval_pending'

/** Is this a token endpoint's code, answered in OAuth's JSON shape? */
export function isOAuthCode(code: ErrorCode): boolean {
  return 'oauth' in ERROR_CODES[code]
}
