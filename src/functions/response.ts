// What a handler returns, made an HTTP response by API Gateway's rules for payload format 2.0
// ("Working with AWS Lambda proxy integrations for HTTP APIs", Lambda function response for format
// 2.0), so a handler written for an HTTP API answers the same here:
//
// - the result is serialized as Lambda's Node.js runtime does (JSON.stringify; undefined is null);
// - valid JSON without a `statusCode` is inferred: 200, `content-type: application/json`, the JSON as
//   the body; a string is the body itself ("Hello from Lambda!" is sent as Hello from Lambda!);
// - an object with a `statusCode` is the response: `headers` (values joined with commas for several),
//   `cookies` (each a Set-Cookie), `body` (a string; base64 when `isBase64Encoded`).
//
// A result API Gateway would call a "malformed Lambda proxy response" is refused with the reason,
// and one larger than MAX_ANSWER_BYTES is refused before it is serialized or decoded (answerSize).
// What the handler's own code throws while its result is read (a getter, a toJSON) is thrown on.
// This runs in the function's worker, so the gateway's thread only writes what comes out.
import { HOP_BY_HOP, nodeHttp } from '../http/index.ts'
import { answerSize, MAX_ANSWER_BYTES, stringifiedWithin, TOO_LARGE, utf8BytesOver } from './answer-size.ts'
import type { FunctionResponse } from './messages.ts'

const { validateHeaderName, validateHeaderValue } = nodeHttp // not imported: http/node-http.ts says why

export type ResponseResult = { ok: true; response: FunctionResponse } | { ok: false; message: string; oversized?: true }

/**
 * The most a handler's headers and cookies may take (name, `: `, value and CRLF each), as an HTTP
 * upstream's answer head (upstream/errors.ts): 20,000 headers or a 5 MB one went to the client, which
 * could not read the head (Node and undici read 16 KiB), and the request was audited as a 200
 * (found by an adversarial probe).
 */
export const MAX_HEAD_BYTES = 16 * 1024

/** Headers the gateway writes itself: the length of what it sends, and its own request id. */
const GATEWAY_WRITTEN = new Set(['content-length', 'x-request-id'])

/** Throws what the handler's own code throws as the result is read: the worker reports it as the handler's error. */
export function httpResponseOf(result: unknown): ResponseResult {
  // Sized first: serializing, flattening or decoding an oversized value is what aborted the process.
  const least = answerSize(result, MAX_ANSWER_BYTES)
  if (least > MAX_ANSWER_BYTES) return oversized()
  // Hot path: a plain object of a response's own members only, which structured() accepts as it is.
  // JSON.stringify cannot fail on such an object nor read it otherwise (every value structured()
  // takes is a string, number, boolean or null, or an object or array of those), so it is skipped:
  // for a 1 KB body it was ~2 µs of each invocation on the worker (issue 15).
  if (least >= 0 && typeof result === 'object' && result !== null) {
    try {
      const taken = isPlainObject(result) && 'statusCode' in result && onlyResponseMembers(result) ? structured(result) : null
      if (taken?.ok) return withUtf8Body(taken.response, least) > MAX_ANSWER_BYTES ? oversized() : taken
    } catch {
      // a getter or proxy trap that throws: the long way below says why
    }
  }
  let json: string | undefined
  try {
    const value = result === undefined ? null : result
    // What answerSize could not size (toJSON, a class instance) is counted while it is serialized.
    json = least < 0 ? stringifiedWithin(value, MAX_ANSWER_BYTES) : JSON.stringify(value)
  } catch (err) {
    if (err === TOO_LARGE) return oversized()
    // JSON's own refusals say what is wrong with the result. Anything else was thrown by the
    // handler's code (a getter, a toJSON) and is its error, as one it threw: its message went to
    // the client ("… postgres://app:pw@…"), and a thrown null ended the worker here (a probe).
    if (!isJsonRefusal(err)) throw err
    return { ok: false, message: `the handler's result cannot be serialized as JSON: ${err.message}` }
  }
  if (json === undefined) json = 'null' // a function or a symbol: JSON has no such value
  // Lambda's own measure: the result's JSON, in bytes.
  if (utf8BytesOver(json, MAX_ANSWER_BYTES)) return oversized()
  if (typeof result === 'string') return inferred(result)
  if (typeof result !== 'object' || result === null) return inferred(json)
  if (isPlainObject(result)) {
    // The common case, without parsing the JSON back: a plain object reads the same either way.
    // Whatever it would not accept as it is goes the exact way below.
    if (!('statusCode' in result)) return inferred(json)
    const taken = structured(result)
    if (taken.ok) return taken
  }
  // The JSON round trip is what API Gateway reads (toJSON applied, undefined members gone).
  const value: unknown = JSON.parse(json)
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && 'statusCode' in value) {
    return structured(value as Record<string, unknown>)
  }
  return inferred(json)
}

/** JSON.stringify's own TypeErrors: a cycle, a BigInt. */
function isJsonRefusal(err: unknown): err is TypeError {
  return err instanceof TypeError && /^(?:Converting circular structure to JSON|Do not know how to serialize a BigInt)/.test(err.message)
}

function oversized(): ResponseResult {
  return { ok: false, oversized: true, message: `the answer is larger than ${MAX_ANSWER_BYTES} bytes` }
}

/** answerSize's count with a text body's UTF-8 bytes instead of its characters (at most three each). */
function withUtf8Body(response: FunctionResponse, least: number): number {
  const { body } = response
  if (typeof body !== 'string' || least + 2 * body.length <= MAX_ANSWER_BYTES) return least
  return least - body.length + Buffer.byteLength(body)
}

const RESPONSE_MEMBERS = new Set(['statusCode', 'headers', 'cookies', 'body', 'isBase64Encoded'])

/**
 * Only a response's members (as JSON.stringify would see them: enumerable string keys), with
 * nothing JSON.stringify would call (toJSON) or refuse: isBase64Encoded a boolean if given, headers
 * a plain object and cookies a plain array if given.
 */
function onlyResponseMembers(value: Record<string, unknown>): boolean {
  for (const key in value) if (!RESPONSE_MEMBERS.has(key)) return false
  const { isBase64Encoded: flag, headers, cookies } = value
  if (flag !== undefined && flag !== null && typeof flag !== 'boolean') return false
  if (headers !== undefined && headers !== null && (typeof headers !== 'object' || !isPlainObject(headers))) return false
  return cookies === undefined || cookies === null || (Array.isArray(cookies) && Object.getPrototypeOf(cookies) === Array.prototype && typeof (cookies as { toJSON?: unknown }).toJSON !== 'function')
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value)
  return (proto === Object.prototype || proto === null) && typeof (value as { toJSON?: unknown }).toJSON !== 'function'
}

function inferred(body: string): ResponseResult {
  return { ok: true, response: { status: 200, headers: ['content-type', 'application/json'], body } }
}

function structured(value: Record<string, unknown>): ResponseResult {
  const { statusCode, headers, cookies, body, isBase64Encoded } = value
  if (typeof statusCode !== 'number' || !Number.isInteger(statusCode) || statusCode < 200 || statusCode > 599) {
    return { ok: false, message: `statusCode must be an integer from 200 to 599, not ${JSON.stringify(statusCode)}` }
  }
  if (body !== undefined && body !== null && typeof body !== 'string') {
    return { ok: false, message: `body must be a string (JSON.stringify an object), not ${Array.isArray(body) ? 'an array' : typeof body}` }
  }
  const out: string[] = []
  if (headers !== undefined && headers !== null) {
    if (typeof headers !== 'object' || Array.isArray(headers)) return { ok: false, message: 'headers must be an object of header names and values' }
    // Where a name comes again in another case, its field's place: made only then.
    let placed: Map<string, number> | null = null
    for (const [name, raw] of Object.entries(headers)) {
      if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
        return { ok: false, message: `header "${name}" must be a string, a number or a boolean (several values: join them with commas)` }
      }
      const lower = name.toLowerCase()
      const problem = headerProblem(lower, String(raw))
      if (problem) return { ok: false, message: problem }
      if (HOP_BY_HOP.has(lower) || GATEWAY_WRITTEN.has(lower)) continue
      // `{ ...defaults, 'content-type': … }` over a default `Content-Type`: one field, the later
      // value, as the handler meant. Two went out before, and node:http2 refuses a second
      // Content-Type (ERR_HTTP2_HEADER_SINGLE_VALUE): an h2 client got 500 (probe finding).
      if (name !== lower || placed !== null) {
        placed ??= fieldPlaces(out)
        const at = placed.get(lower)
        if (at !== undefined) {
          out[at + 1] = String(raw)
          continue
        }
        placed.set(lower, out.length)
      }
      out.push(lower, String(raw))
    }
  }
  if (cookies !== undefined && cookies !== null) {
    if (!Array.isArray(cookies) || cookies.some((cookie) => typeof cookie !== 'string')) return { ok: false, message: 'cookies must be an array of strings' }
    for (const cookie of cookies as string[]) {
      const problem = headerProblem('set-cookie', cookie)
      if (problem) return { ok: false, message: problem }
      out.push('set-cookie', cookie)
    }
  }
  const headProblem = headSizeProblem(out)
  if (headProblem) return { ok: false, message: headProblem }
  const text = typeof body === 'string' ? body : ''
  if (isBase64Encoded !== true) return { ok: true, response: { status: statusCode, headers: out, body: text } }
  const notBase64 = base64Problem(text)
  if (notBase64) return { ok: false, message: `isBase64Encoded is true, but body is not base64: ${notBase64}` }
  return { ok: true, response: { status: statusCode, headers: out, body: new Uint8Array(Buffer.from(text, 'base64')) } }
}

/**
 * Null when `text` is base64: the standard alphabet (API Gateway's), or the URL-safe one, not mixed;
 * the `=` padding optional, but where given, right; no white space. Node's decoder skips whatever is
 * not base64, so a body never encoded, or cut, went out as a 200 of other bytes (an adversarial
 * probe).
 */
function base64Problem(text: string): string | null {
  const stray = text.search(/[^A-Za-z0-9+/_=-]/)
  if (stray >= 0) return `the character ${JSON.stringify(text[stray])} at ${stray} is not base64`
  const padding = text.indexOf('=')
  if (padding >= 0 && (text.length - padding > 2 || text.charCodeAt(text.length - 1) !== 61)) {
    return `the "=" at ${padding} is not padding at its end`
  }
  if (/[+/]/.test(text) && /[-_]/.test(text)) return 'it mixes the standard (+ /) and URL-safe (- _) alphabets'
  const data = padding < 0 ? text.length : padding
  if (data % 4 === 1 || (padding >= 0 && text.length % 4 !== 0)) return `${text.length} characters is no length base64 has: it is cut, or wrongly padded`
  return null
}

/** Where each name of a flat [name, value, …] list is. */
function fieldPlaces(fields: readonly string[]): Map<string, number> {
  const places = new Map<string, number>()
  for (let i = 0; i < fields.length; i += 2) places.set(fields[i] as string, i)
  return places
}

/**
 * A response as it reaches the gateway's thread, checked again there: httpResponseOf runs in the
 * worker, where a handler can post its own `result` past it (probe finding). Null when it can be
 * written as it is.
 */
export function postedResponseProblem(response: unknown): string | null {
  if (typeof response !== 'object' || response === null) return 'it is not a response'
  const { status, headers, body } = response as Record<string, unknown>
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) return `its status ${String(status)} is not an integer from 200 to 599`
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) return 'its body is neither text nor bytes'
  if (!Array.isArray(headers) || headers.length % 2 !== 0) return 'its headers are not name and value pairs'
  if (postedBytes(body, headers) > MAX_ANSWER_BYTES) return `it is larger than ${MAX_ANSWER_BYTES} bytes`
  const seen = new Set<string>()
  if (headers.every((field) => typeof field === 'string')) {
    const headProblem = headSizeProblem(headers as string[])
    if (headProblem) return headProblem
  }
  for (let i = 0; i < headers.length; i += 2) {
    const name: unknown = headers[i]
    const value: unknown = headers[i + 1]
    if (typeof name !== 'string' || typeof value !== 'string') return 'a header name or value is not a string'
    if (name !== name.toLowerCase() || HOP_BY_HOP.has(name) || GATEWAY_WRITTEN.has(name)) return `header "${name}" is not one a function may send`
    // One field a name, as structured() makes them, but Set-Cookie: HTTP/2 refuses a second Content-Type.
    if (seen.has(name) && name !== 'set-cookie') return `header "${name}" is given twice`
    seen.add(name)
    const problem = headerProblem(name, value)
    if (problem) return problem
  }
  return null
}

/** Null when a [name, value, …] list fits MAX_HEAD_BYTES; else why not. */
function headSizeProblem(fields: readonly string[]): string | null {
  let chars = 0
  for (const field of fields) chars += field.length + 2
  if (chars * 3 <= MAX_HEAD_BYTES) return null // the common head: no field's bytes counted
  let bytes = 0
  for (const field of fields) bytes += Buffer.byteLength(field) + 2
  return bytes > MAX_HEAD_BYTES ? `its headers and cookies take ${bytes} bytes, more than the ${MAX_HEAD_BYTES} an answer's head may (as an HTTP upstream's)` : null
}

/** At least: text by its characters, checked before any header is read as text. */
function postedBytes(body: string | Uint8Array, headers: unknown[]): number {
  let bytes = typeof body === 'string' ? body.length : body.byteLength
  for (const field of headers) bytes += typeof field === 'string' ? field.length : 0
  return bytes
}

/** Node's own checks, so the gateway's writeHead never throws on what a handler sent. */
function headerProblem(name: string, value: string): string | null {
  try {
    validateHeaderName(name)
    validateHeaderValue(name, value)
    return null
  } catch (err) {
    return `header "${name}": ${(err as Error).message}`
  }
}
