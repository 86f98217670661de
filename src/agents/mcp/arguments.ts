// A tool call's arguments as the audit record and approvals see them: a SHA-256 of their
// canonical JSON (keys sorted, RFC 8785-style), so the same arguments give the same digest however
// the client ordered them; and, only where mcp.log_arguments asks for it, the arguments themselves
// with anything that looks like a secret replaced.
import { createHash } from 'node:crypto'

/**
 * How deep a call's arguments may nest. JSON.parse takes any depth (it does not recurse), but the
 * digest, the redaction and the request built from them do: 200,000 levels overflowed the stack
 * before the call was audited. A tool's real arguments are a few levels deep.
 */
export const MAX_ARGUMENT_DEPTH = 64

/** Whether `value` nests deeper than `limit` objects and arrays (walked without recursion). */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [item, depth] = stack.pop() as [unknown, number]
    if (item === null || typeof item !== 'object') continue
    if (depth >= limit) return true
    for (const child of Array.isArray(item) ? item : Object.values(item)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1])
  }
  return false
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const entries = Object.keys(value as object).sort().filter((k) => (value as Record<string, unknown>)[k] !== undefined)
  return `{${entries.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`
}

export function argumentsDigest(args: Readonly<Record<string, unknown>>): string {
  return createHash('sha256').update(canonicalJson(args)).digest('hex')
}

/** Names whose values are secrets wherever they appear (the same words log redaction looks for). */
const SECRET_NAME = /pass(word|wd)?|secret|token|api[-_]?key|authorization|cookie|credential|private[-_]?key|session/i
/** Values that are credentials whatever they are called: JWTs, bearer values, PEM keys. */
const SECRET_VALUE = /^(?:eyJ[\w-]+\.[\w-]+\.[\w-]*|bearer\s+\S+|basic\s+\S+|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*)$/i
const REDACTED = '[redacted]'

export function redactArguments(value: unknown, name = ''): unknown {
  if (name !== '' && SECRET_NAME.test(name)) return REDACTED
  if (typeof value === 'string') return SECRET_VALUE.test(value.trim()) ? REDACTED : value
  if (Array.isArray(value)) return value.map((item) => redactArguments(item))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactArguments(item, key)]))
  }
  return value
}
