// The names a credential gives its principal (a token's sub and client_id, its act's sub, client_id
// and iss) go to every upstream in X-Bouncer-Assertion, into log lines, audit records, limit keys
// and store keys. Unbounded, a 6 KB sub (a token under max_token_bytes; a sign-in's ID token, more)
// went upstream past what nginx's 4 KB proxy buffer or Node's 16 KB header limit take: the caller
// got the upstream's 400, 431 or 500, as if its own headers were at fault. A lone surrogate could
// not be URI-encoded as the Redis session store's key (a 503 blaming Redis, the person unable ever
// to sign in) and was folded to U+FFFD elsewhere, two subjects as one.

import type { Identity } from '../request/index.ts'

/** SPIFFE ID §2.3's bound (a workload's name, x509.ts): the longest name a principal may have. */
export const MAX_PRINCIPAL_NAME_BYTES = 2048

/** UTF-16 units that cannot reach MAX_PRINCIPAL_NAME_BYTES in UTF-8 (3 bytes each at most): the byte count is skipped. */
const SURELY_SHORT = Math.floor(MAX_PRINCIPAL_NAME_BYTES / 3)

/** Why the agent a token names (its `act`) cannot be named so; null when it can, or there is none. */
export function actorNameProblem(identity: Identity): string | null {
  const actor = identity.actor
  if (!actor) return null
  return principalNameProblem('act.sub', actor.sub) ?? principalNameProblem('act.client_id', actor.clientId) ?? principalNameProblem('act.iss', actor.iss)
}

/** Why `value`, the credential's `claim`, cannot name a principal; null when it can (or is absent). */
export function principalNameProblem(claim: string, value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null
  if (value.length > SURELY_SHORT) {
    const bytes = Buffer.byteLength(value)
    if (bytes > MAX_PRINCIPAL_NAME_BYTES) return `The token's ${claim} is ${bytes} bytes: a principal's name is at most ${MAX_PRINCIPAL_NAME_BYTES} (it goes to upstreams in X-Bouncer-Assertion, and into logs and audit records).`
  }
  if (!value.isWellFormed()) return `The token's ${claim} is not well-formed Unicode (it holds a lone surrogate): it cannot name a principal.`
  return null
}
