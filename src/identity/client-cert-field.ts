// RFC 9440's fields, as a TLS-terminating proxy writes them: `Client-Cert` is one Byte Sequence
// (RFC 8941 §3.3.5: the DER certificate in base64 between colons), `Client-Cert-Chain` a List of
// them, which may be split over several field lines. Parsed strictly: what is not that shape is
// refused with a reason an operator can act on (a PEM or URL-encoded certificate is the usual
// mistake), never guessed at. Pure: strings in, DER bytes or a reason out.

import { sequenceEnd } from '../collections/index.ts'

/** A field the gateway will not read, and why (the 401's detail). */
export class ClientCertFieldError extends Error {}

/** base64 (RFC 4648 §4), padding optional (RFC 8941 §4.2.7: parsers should not fail without it). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** RFC 8941 §3.1.2: a parameter's key. */
const PARAMETER_KEY = /^[a-z*][a-z0-9_.*-]*/

/** RFC 8941 §3.3: a bare item other than a Byte Sequence (token, number, boolean, string) as a parameter's value. */
const PARAMETER_VALUE = /^(?:"(?:[^"\\]|\\["\\])*"|\?[01]|-?[0-9]+(?:\.[0-9]+)?|[A-Za-z*][!#$%&'*+.^_`|~0-9A-Za-z:/-]*|:[A-Za-z0-9+/=]*:)/

/**
 * The end-entity certificate's DER from Client-Cert's field lines. RFC 9440 §2.2: a singleton,
 * never a list nor repeated (two would leave the gateway to pick whose certificate counts).
 */
export function parseClientCertField(lines: readonly string[], what: string): Buffer {
  if (lines.length !== 1) throw new ClientCertFieldError(`${what} came ${lines.length} times: RFC 9440 sends one certificate, once.`)
  const items = parseList(lines[0] as string, what)
  if (items.length !== 1) throw new ClientCertFieldError(`${what} holds ${items.length === 0 ? 'no certificate' : `a list of ${items.length}`}: RFC 9440 sends exactly one certificate.`)
  return items[0] as Buffer
}

/**
 * The chain's DER certificates from Client-Cert-Chain's field lines (a List; lines join with commas,
 * RFC 9110 §5.3). An item holding several certificates back to back is split: HAProxy's
 * `ssl_c_chain_der` is the chain's DER concatenated, which `:%[ssl_c_chain_der,base64]:` sends as one.
 */
export function parseClientCertChainField(lines: readonly string[], what: string): Buffer[] {
  return lines.length === 0 ? [] : parseList(lines.join(', '), what).flatMap((item) => concatenatedDer(item, what))
}

/** DER elements back to back (X.690 §8.1: each says its length), or the whole item when it is not that. */
function concatenatedDer(item: Buffer, what: string): Buffer[] {
  const elements: Buffer[] = []
  for (let at = 0; at < item.length;) {
    const end = sequenceEnd(item, at)
    if (end === null) {
      if (elements.length === 0) return [item] // not DER at all: refused as no certificate, with the rest
      throw new ClientCertFieldError(`${what} has bytes after its certificates that are no certificate.`)
    }
    elements.push(item.subarray(at, end))
    at = end
  }
  return elements
}

/** RFC 8941 §4.2.1: a List whose members are Byte Sequences (with any parameters, which RFC 9440 defines none of). */
function parseList(field: string, what: string): Buffer[] {
  const items: Buffer[] = []
  let at = skip(field, 0, ' ')
  if (at === field.length) return items
  for (;;) {
    if (field[at] !== ':') throw notByteSequence(field, what)
    const end = field.indexOf(':', at + 1)
    if (end === -1) throw notByteSequence(field, what)
    items.push(decodeBase64(field.slice(at + 1, end), what))
    at = skipParameters(field, end + 1, what)
    at = skip(field, at, ' \t')
    if (at === field.length) return items
    if (field[at] !== ',') throw new ClientCertFieldError(`${what} has "${excerpt(field.slice(at))}" after a certificate: a list's certificates are separated by commas.`)
    at = skip(field, at + 1, ' \t')
    if (at === field.length) throw new ClientCertFieldError(`${what} ends with a comma: a list does not (RFC 8941 §4.2.1).`)
  }
}

function skip(field: string, at: number, characters: string): number {
  while (at < field.length && characters.includes(field[at] as string)) at++
  return at
}

function skipParameters(field: string, at: number, what: string): number {
  while (field[at] === ';') {
    at = skip(field, at + 1, ' ')
    const key = PARAMETER_KEY.exec(field.slice(at))
    if (key === null) throw new ClientCertFieldError(`${what} has a parameter without a valid key (RFC 8941 §3.1.2).`)
    at += key[0].length
    if (field[at] === '=') {
      const value = PARAMETER_VALUE.exec(field.slice(at + 1))
      if (value === null) throw new ClientCertFieldError(`${what} has a parameter "${key[0]}" whose value is not a bare item (RFC 8941 §3.1.2).`)
      at += 1 + value[0].length
    }
  }
  return at
}

function decodeBase64(text: string, what: string): Buffer {
  // Buffer.from skips what is not base64: checked first, or `:x!y:` would read as a shorter certificate.
  if (!BASE64.test(text) || text.length % 4 === 1) throw new ClientCertFieldError(`${what} is not base64 between its colons (RFC 8941 §3.3.5).`)
  const bytes = Buffer.from(text, 'base64')
  // `:==:` or `:A=:` decode to no octets: as empty as `::`, not a certificate to skip.
  if (bytes.length === 0) throw new ClientCertFieldError(`${what} holds an empty certificate (:${excerpt(text)}:).`)
  return bytes
}

function notByteSequence(field: string, what: string): ClientCertFieldError {
  const hint = /-----BEGIN|%2D%2D%2D|^-+BEGIN/i.test(field)
    ? ' It holds a PEM certificate: send the DER in base64 between colons (HAProxy: :%[ssl_c_der,base64]:).'
    : ''
  return new ClientCertFieldError(`${what} is not an RFC 9440 certificate (:base64 of its DER:).${hint}`)
}

/** A few characters of what the client's proxy sent, for the detail (it may be anything). */
function excerpt(text: string): string {
  // eslint-disable-next-line no-control-regex -- the control characters are what is replaced
  const shown = text.slice(0, 16).replace(/[\x00-\x1f\x7f-\uffff"\\]/g, '?')
  return text.length > 16 ? `${shown}…` : shown
}
