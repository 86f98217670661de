import { ERROR_CODES, type ErrorCode } from './codes.ts'

export interface GatewayErrorOptions {
  /** Shown to the client. Never a token, a secret or a stack trace. */
  detail?: string
  /** Kept for logs only: the library error or exception that led here. */
  cause?: unknown
  /** Extra response headers, e.g. Retry-After, WWW-Authenticate, Allow; a list for Set-Cookie, one line each. */
  headers?: Record<string, string | string[]>
  /**
   * Only where SPEC gives a code a second status: 503 upstream_unavailable when no target of an
   * upstream is healthy (refused at once), where the code's 502 means a connection that failed;
   * 302 for session_required and session_expired answered to a browser, sent to sign in (Location).
   */
  status?: 503 | 302
}

/** The one error type the pipeline throws; `respond.ts` turns it into a problem+json answer. */
export class GatewayError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly detail: string
  readonly headers: Record<string, string | string[]> | undefined

  constructor(code: ErrorCode, options: GatewayErrorOptions = {}) {
    const { status, title } = ERROR_CODES[code]
    super(options.detail ?? title, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'GatewayError'
    this.code = code
    this.status = options.status ?? status
    this.detail = options.detail ?? title
    this.headers = options.headers
  }
}

/** Anything that is not already a GatewayError is a bug: 500, with the cause kept for the log. */
export function asGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err
  return new GatewayError('internal_error', { detail: 'The gateway failed to handle this request.', cause: err })
}
