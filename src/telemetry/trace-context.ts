// W3C Trace Context (https://www.w3.org/TR/trace-context/): continue a valid incoming trace,
// start one otherwise. The gateway is a hop of its own, so it always sends a new parent id.
import { randomBytes } from 'node:crypto'

export interface TraceContext {
  traceId: string
  /** The gateway's own span id: the `parent-id` it sends upstream. */
  spanId: string
  /** The caller's span id, when the trace was continued. */
  parentSpanId: string | null
  flags: string
  tracestate: string | null
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)

// Ids come from a pooled random buffer: one getrandom call per 512 requests, not one per request.
const POOL_IDS = 512
let pool = Buffer.alloc(0)
let offset = 0

function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    pool = randomBytes(POOL_IDS * 24)
    offset = 0
  }
  const hex = pool.toString('hex', offset, offset + bytes)
  offset += bytes
  return hex
}

export function traceContextOf(traceparent: string | undefined, tracestate: string | undefined): TraceContext {
  if (traceparent !== undefined) {
    const match = TRACEPARENT.exec(traceparent.trim())
    // Version ff is invalid; version 00 allows nothing after the flags.
    if (match && match[1] !== 'ff' && !(match[1] === '00' && match[5] !== undefined)) {
      const traceId = match[2] as string
      const parent = match[3] as string
      if (traceId !== ZERO_TRACE && parent !== ZERO_SPAN) {
        return { traceId, spanId: randomHex(8), parentSpanId: parent, flags: knownFlags(match[4] as string), tracestate: tracestate === undefined ? null : validTracestate(tracestate) }
      }
    }
  }
  return { traceId: randomHex(16), spanId: randomHex(8), parentSpanId: null, flags: '01', tracestate: null }
}

/**
 * The flags the gateway passes on: sampled (0x01) and Level 2's random trace id (0x02). W3C Trace
 * Context: bits it does not define, vendors MUST set to zero (a client's `ff` was sent on as is).
 */
function knownFlags(hex: string): string {
  const flags = Number.parseInt(hex, 16) & 0x03
  return flags === 1 ? '01' : `0${flags}`
}

/** W3C Trace Context §3.3.1: at most 32 list-members, and 512 characters are all a vendor need pass on. */
const MAX_TRACESTATE_MEMBERS = 32
const TRACESTATE_LENGTH = 512
/** Dropped first when a tracestate is over TRACESTATE_LENGTH (§3.3.1.5). */
const LONG_MEMBER = 128
const MEMBER = /^(?:[a-z][_0-9a-z*/-]{0,255}|[a-z0-9][_0-9a-z*/-]{0,240}@[a-z][_0-9a-z*/-]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/

/**
 * The tracestate passed upstream: a client's own was sent on as it came, whatever its size (16 KB
 * of it, every hop after the gateway paying for it) or shape. Null when it breaks the grammar, has
 * a key twice or over 32 members (W3C: not to be propagated); over 512 characters, cut as W3C says:
 * members over 128 characters first, then from the end.
 */
function validTracestate(header: string): string | null {
  const members: string[] = []
  const keys = new Set<string>()
  for (const part of header.split(',')) {
    const member = part.trim()
    if (member === '') continue
    if (!MEMBER.test(member)) return null
    const key = member.slice(0, member.indexOf('='))
    if (keys.has(key) || members.push(member) > MAX_TRACESTATE_MEMBERS) return null
    keys.add(key)
  }
  let kept = members.join(',')
  if (kept.length > TRACESTATE_LENGTH) {
    const short = members.filter((member) => member.length <= LONG_MEMBER)
    while (short.join(',').length > TRACESTATE_LENGTH) short.pop()
    kept = short.join(',')
  }
  return kept === '' ? null : kept
}

export function traceparentOf(trace: TraceContext): string {
  return `00-${trace.traceId}-${trace.spanId}-${trace.flags}`
}
