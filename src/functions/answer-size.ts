// How large a handler's answer is, found in its worker before anything is serialized, decoded or
// posted. A worker's `memory` is not a hard bound: V8 lets one large allocation pass the heap limit,
// and Node gives a worker at its limit only 16 MB more before V8 aborts the whole process. So a
// handler returning `{ data: 'y'.repeat(200 MB) }` (a cheap rope) from a 64 MB function killed the
// gateway inside JSON.stringify, which flattens it; a 100 MB body reached the gateway's thread whole
// (probe findings). An answer is sized first, while only lengths are read, and refused past the limit.

/**
 * The most a function may answer: 6 MB (6,291,556 bytes), Lambda's limit on a synchronous
 * invocation's response, counted as Lambda counts it (the result's JSON). Fixed rather than a
 * setting: handlers written for Lambda already keep under it; the gateway holds an answer whole
 * (a function's answer is not streamed), and what it allocates to serialize one this size stays
 * within the 16 MB a worker is given past its heap limit, so a larger answer is an upstream's job.
 */
export const MAX_ANSWER_BYTES = 6_291_556

/** Thrown by stringifiedWithin's replacer once past its limit. */
export const TOO_LARGE = Symbol('too large')

/** answerSize could not read the value without calling it (toJSON, a class instance, a getter that throws, a cycle). */
const UNSIZED = -1

/** Deeper than this a result is left to JSON.stringify (with a counting replacer): no answer nests so. */
const MAX_DEPTH = 64

/**
 * At least how many bytes the value's JSON has (strings by their length, escapes not counted), or
 * UNSIZED; counting stops once past `limit`. Reads lengths only: a rope is never flattened, an array
 * with a billion holes is left after the first million. It serializes nothing: a walk costing
 * 0.3–0.7 × the JSON.stringify that follows it (a 0.5 and a 60 KB result; ≈ 0.2 µs for a
 * response object with a 1 KB body, which skips JSON.stringify), where a counting replacer made
 * JSON.stringify ~3 × slower.
 */
export function answerSize(value: unknown, limit: number): number {
  try {
    return sizeOf(value, limit, [])
  } catch {
    return UNSIZED // JSON.stringify meets the same getter or trap and says what it threw
  }
}

function sizeOf(value: unknown, limit: number, holders: object[]): number {
  if (typeof value === 'string') return value.length + 2
  if (typeof value === 'number') return numberSize(value)
  // undefined, a function, a symbol: left out (null in an array: the caller counts it)
  if (typeof value !== 'object') return typeof value === 'boolean' ? (value ? 4 : 5) : typeof value === 'bigint' ? UNSIZED : 0
  if (value === null) return 4
  const object = value as Record<string, unknown>
  const proto: unknown = Object.getPrototypeOf(object)
  let bytes = 1 // the opening bracket; each item adds its separator or the closing one
  if (proto === Array.prototype) {
    if (!Array.isArray(object) || !sizable(object, holders)) return UNSIZED
    for (let i = 0; i < object.length && bytes <= limit; i++) {
      const item = sizeOf(object[i], limit - bytes, holders)
      if (item === UNSIZED) return UNSIZED
      bytes += (item === 0 ? 4 : item) + 1
    }
  } else if (proto === Object.prototype || proto === null) {
    if (!sizable(object, holders)) return UNSIZED
    for (const key in object) {
      const item = sizeOf(object[key], limit - bytes, holders)
      if (item === UNSIZED) return UNSIZED
      if (item > 0) bytes += key.length + 4 + item // "key": and a separator
      if (bytes > limit) break
    }
  } else {
    // A Map, a Buffer, a class instance: what JSON makes of it is JSON.stringify's to say.
    return proto === Date.prototype && object.toJSON === Date.prototype.toJSON ? 4 : UNSIZED
  }
  holders.pop()
  return bytes
}

/** Read as it is (no toJSON), not too deep, not one of its own holders (a cycle); pushed if so. */
function sizable(object: object, holders: object[]): boolean {
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function' || holders.length >= MAX_DEPTH || holders.includes(object)) return false
  holders.push(object)
  return true
}

/** The fewest characters JSON writes for the number, without formatting it. */
function numberSize(n: number): number {
  if (!Number.isFinite(n)) return 4 // null
  if (!Number.isInteger(n)) return 3 // 0.5
  const size = Math.abs(n)
  if (size >= 1e21) return 5 // 1e+21
  let digits = 1
  for (let ten = 10; ten <= size; ten *= 10) digits++
  return n < 0 ? digits + 1 : digits
}

/**
 * JSON.stringify counting as answerSize does, after toJSON, and stopping with TOO_LARGE once past
 * `limit`: for what answerSize could not read. A replacer makes JSON.stringify ~3 times slower,
 * hence only here.
 */
export function stringifiedWithin(value: unknown, limit: number): string | undefined {
  let bytes = -4 // the root comes as the member "" of a holder of its own: only its value counts
  return JSON.stringify(value, function counted(this: unknown, key: string, item: unknown) {
    // An object or array counts its bracket here, its members as the replacer meets them.
    const size = typeof item === 'string' ? item.length + 2 : typeof item === 'number' ? numberSize(item) : typeof item === 'boolean' ? (item ? 4 : 5) : typeof item === 'object' && item !== null ? 1 : 0
    if (Array.isArray(this)) bytes += (size === 0 ? 4 : size) + 1
    else if (size > 0) bytes += key.length + 4 + size
    if (bytes > limit) throw TOO_LARGE
    return item
  })
}

/** Whether the text has more than `limit` bytes in UTF-8: at most 3 a character, so mostly no scan. */
export function utf8BytesOver(text: string, limit: number): boolean {
  if (text.length > limit) return true
  return text.length * 3 > limit && Buffer.byteLength(text) > limit
}
