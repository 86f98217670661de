// Token exchange (RFC 8693) at a test gateway's POST /oauth2/token: the form a client sends, and the
// answer read back, so that a test names only the tokens it trades and what it asks for.
import { request } from 'undici'
import { expect } from 'vitest'

/** RFC 8693 §2.1's grant_type. */
export const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** RFC 8693 §3's token type of an access token: the subject's, the actor's and the issued token's. */
export const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'
/** The issuer the tests' token_exchange configs give the gateway. */
export const ISSUER = 'https://gateway.test'

export interface TokenRequest {
  subject: string
  actor?: string
  audience?: string
  scope?: string
  resource?: string
  /** Form parameters sent beside the ones above, or in their place; `null` leaves one out. */
  params?: Record<string, string | null>
  /** Sent as X-Request-Id, to find the request's audit record. */
  requestId?: string
}

export interface TokenAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: {
    access_token?: string; issued_token_type?: string; token_type?: string; expires_in?: number; scope?: string
    error?: string; error_description?: string; code?: string; [name: string]: unknown
  }
}

/** The token request's form, urlencoded: the subject's token, the actor's when there is one, and the target. */
export function tokenForm({ subject, actor, audience, scope, resource, params = {} }: TokenRequest): string {
  const all: Record<string, string | null | undefined> = {
    grant_type: GRANT,
    subject_token: subject, subject_token_type: ACCESS_TOKEN,
    ...(actor === undefined ? {} : { actor_token: actor, actor_token_type: ACCESS_TOKEN }),
    audience, scope, resource,
    ...params,
  }
  const form = new URLSearchParams()
  for (const [name, value] of Object.entries(all)) if (value !== undefined && value !== null) form.append(name, value)
  return form.toString()
}

/** `body` posted to the gateway's token endpoint (as a form unless `contentType` says otherwise), its JSON answer read. */
export async function postTokenRequest(gatewayUrl: string, body: string, options: { contentType?: string; requestId?: string } = {}): Promise<TokenAnswer> {
  const res = await request(`${gatewayUrl}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': options.contentType ?? 'application/x-www-form-urlencoded', ...(options.requestId ? { 'x-request-id': options.requestId } : {}) },
    body,
  })
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as TokenAnswer['body'] }
}

/** The gateway's answer to exchanging `tokens.subject` (with `tokens.actor` acting, when given). */
export function exchange(gatewayUrl: string, tokens: TokenRequest): Promise<TokenAnswer> {
  return postTokenRequest(gatewayUrl, tokenForm(tokens), { requestId: tokens.requestId })
}

/** The access token the gateway issues for `tokens`; the test fails, showing the answer, when it issues none. */
export async function exchanged(gatewayUrl: string, tokens: TokenRequest): Promise<string> {
  const answer = await exchange(gatewayUrl, tokens)
  expect(answer.status, JSON.stringify(answer.body)).toBe(200)
  return answer.body.access_token as string
}
