// The body of a token request: application/x-www-form-urlencoded (RFC 6749 §3.2), small, and each
// parameter at most once (RFC 6749 §3.1: "MUST NOT be included more than once"); one sent without a
// value is as if omitted (§3.1 again: the probe found `subject_token=` answered invalid_grant about
// an Authorization header the client never sent, where the token is missing).
import { GatewayError, truncateClientValue } from '../../errors/index.ts'
import { rawHeader } from '../../identity/index.ts'
import { readWholeBody, type RequestContext } from '../../request/index.ts'

/** The parameters RFC 8693 §2.1 lets a client repeat. */
const SEVERAL_TARGETS: ReadonlySet<string> = new Set(['audience', 'resource'])

/** A token request is a few tokens and names: two 8 KB tokens fit many times over. */
const MAX_FORM_BYTES = 64 * 1024

export async function readForm(ctx: RequestContext): Promise<{ params: Map<string, string>; bytes: number }> {
  const type = rawHeader(ctx.req.rawHeaders, 'content-type')
  if (type === undefined || type.split(';')[0]?.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
    throw new GatewayError('invalid_request', { detail: 'A token request is a form: Content-Type: application/x-www-form-urlencoded (RFC 6749 §3.2).' })
  }
  // The form is read as it came: a gzip body was parsed as its compressed bytes, and answered
  // "grant_type is missing" (the probe). RFC 9110 §15.5.16: Accept-Encoding names what is taken.
  const coding = rawHeader(ctx.req.rawHeaders, 'content-encoding')?.trim().toLowerCase()
  if (coding !== undefined && coding !== '' && coding !== 'identity') {
    throw new GatewayError('invalid_request', { detail: `The token request's body is sent with Content-Encoding ${truncateClientValue(coding, 40)}: the token endpoint reads the form as it is; send it unencoded.`, headers: { 'accept-encoding': 'identity' } })
  }
  const body = await readWholeBody(ctx.req, {
    maxBytes: MAX_FORM_BYTES,
    deadline: ctx.bodyDeadline,
    tooLarge: () => new GatewayError('invalid_request', { detail: `The token request is larger than ${MAX_FORM_BYTES} bytes.` }),
  })
  const bytes = body.length
  const params = new Map<string, string>()
  for (const [name, value] of new URLSearchParams(body.toString('utf8'))) {
    if (value === '') continue
    if (params.has(name)) {
      // RFC 8693 §2.1 lets a client name several targets; the gateway issues a token for one (§2.2.2: invalid_target).
      if (SEVERAL_TARGETS.has(name)) throw new GatewayError('invalid_target', { detail: `${name} is given more than once: a token the gateway issues is for one audience; ask for one token per target.` })
      throw new GatewayError('invalid_request', { detail: `${name.slice(0, 40)} is given more than once (RFC 6749 §3.1).` })
    }
    params.set(name, value)
  }
  return { params, bytes }
}
