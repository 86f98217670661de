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

/**
 * Written without recursion, as nestsDeeperThan walks: a call refused for nesting too deep is
 * audited with its digest too (it was audited with '', which no search by digest finds: a probe).
 */
export function canonicalJson(value: unknown): string {
  const parts: string[] = []
  // What is left to write, last first: a value, or text between values (brackets, commas, keys).
  const pending: Array<{ text: string } | { value: unknown }> = [{ value }]
  while (pending.length > 0) {
    const next = pending.pop() as { text: string } | { value: unknown }
    if ('text' in next) {
      parts.push(next.text)
      continue
    }
    const item = next.value
    if (item === null || typeof item !== 'object') {
      parts.push(JSON.stringify(item) ?? 'null')
    } else if (Array.isArray(item)) {
      pending.push({ text: ']' })
      for (let i = item.length - 1; i >= 0; i--) pending.push({ value: item[i] }, { text: i === 0 ? '[' : ',' })
      if (item.length === 0) pending.push({ text: '[' })
    } else {
      const record = item as Record<string, unknown>
      const keys = Object.keys(record).sort().filter((k) => record[k] !== undefined)
      pending.push({ text: '}' })
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i] as string
        pending.push({ value: record[key] }, { text: `${i === 0 ? '{' : ','}${JSON.stringify(key)}:` })
      }
      if (keys.length === 0) pending.push({ text: '{' })
    }
  }
  return parts.join('')
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
