// The paging cursor: where the last page stopped (its key columns' values), for which dataset and
// which parameters, signed with an HMAC under the datasource's key. A cursor someone altered, or one
// taken to another dataset or to other parameters, is refused (400 invalid_parameter): it could
// otherwise page through rows the parameters were meant to select out.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { invalidParameter } from './params.ts'

export interface PagePosition {
  /** The key columns' values of the last row sent. */
  after: Array<string | number>
}

export function signCursor(position: PagePosition, scope: string, key: Buffer): string {
  const body = Buffer.from(JSON.stringify({ a: position.after, s: scope })).toString('base64url')
  return `${body}.${mac(body, key)}`
}

export function verifyCursor(cursor: string, scope: string, key: Buffer): PagePosition {
  const dot = cursor.indexOf('.')
  const body = cursor.slice(0, dot)
  const signature = Buffer.from(cursor.slice(dot + 1), 'base64url')
  const expected = Buffer.from(mac(body, key), 'base64url')
  if (dot === -1 || signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
    throw invalidParameter('cursor', 'not a cursor this gateway issued (altered, or signed with another key)')
  }
  let decoded: { a?: unknown; s?: unknown }
  try {
    decoded = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { a?: unknown; s?: unknown }
  } catch {
    throw invalidParameter('cursor', 'not a cursor this gateway issued')
  }
  if (decoded.s !== scope) throw invalidParameter('cursor', 'issued for other parameters or another dataset: page with the same parameters')
  if (!Array.isArray(decoded.a) || !decoded.a.every((v) => typeof v === 'string' || typeof v === 'number')) throw invalidParameter('cursor', 'not a cursor this gateway issued')
  return { after: decoded.a as Array<string | number> }
}

function mac(body: string, key: Buffer): string {
  return createHmac('sha256', key).update(`bouncer-cursor:${body}`).digest('base64url')
}
