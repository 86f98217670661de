// undici's and node:http's failures become SPEC's codes here, where they enter our code.
import { GatewayError } from '../errors/index.ts'
import type { Upstream } from './pools.ts'

const UNAVAILABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EADDRNOTAVAIL'])

/** undici's error codes → SPEC's 502/504 codes. */
export function translateUndiciError(err: Error, upstream: Upstream): GatewayError {
  const code = (err as { code?: string }).code ?? ''
  if (UNAVAILABLE.has(code)) {
    const why = code === 'UND_ERR_CONNECT_TIMEOUT' ? 'the connection timed out' : `the connection failed (${code})`
    return new GatewayError('upstream_unavailable', { detail: `Upstream "${upstream.name}" is unavailable: ${why}.`, cause: err })
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new GatewayError('upstream_timeout', { detail: `Upstream "${upstream.name}" did not answer in time.`, cause: err })
  }
  if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
    return new GatewayError('bad_request', { detail: 'The request body did not match its Content-Length.', cause: err })
  }
  return new GatewayError('upstream_error', { detail: `Upstream "${upstream.name}" failed mid-exchange.`, cause: err })
}

/** max_concurrent reached: refused before anything is sent. */
export function upstreamSaturated(upstream: Upstream, retryAfter: boolean): GatewayError {
  return new GatewayError('upstream_saturated', {
    detail: `Upstream "${upstream.name}" already has ${upstream.maxConcurrent} requests in flight.`,
    headers: retryAfter ? { 'retry-after': '1' } : undefined,
  })
}
