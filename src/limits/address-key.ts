// The address a limit counts a caller by. An IPv4 address is one caller. An IPv6 address is not:
// a subscriber is handed a whole /64 or more (RFC 6177, RFC 8981 privacy addresses rotate inside
// it), so keying by the full address would give one client 2^64 fresh budgets. A limit counts an
// IPv6 caller by the first `prefix` bits (ip_prefix_v6, 64 by default), written canonically so
// `2001:DB8::1` and `2001:db8:0::1` are one key; an IPv4-mapped address (`::ffff:a.b.c.d`, in any
// spelling) is its IPv4 address.

const groups = new Uint16Array(8)

/** `198.51.100.7`, or `2001:db8:1:2/64` for any address in 2001:db8:1:2::/64. */
export function addressKey(address: string, prefixV6: number): string {
  if (!address.includes(':')) return address // IPv4 (validated upstream: the socket or isIP)
  if (!parseIpv6(address)) return address.toLowerCase()
  if (isIpv4Mapped()) return `${group(6) >> 8}.${group(6) & 255}.${group(7) >> 8}.${group(7) & 255}`
  const whole = prefixV6 >> 4
  let out = ''
  for (let i = 0; i < whole; i++) out += (i === 0 ? '' : ':') + hexGroup(group(i))
  const bits = prefixV6 & 15
  if (bits > 0) out += (whole === 0 ? '' : ':') + hexGroup(group(whole) & (0xffff << (16 - bits)) & 0xffff)
  return `${out}/${prefixV6}`
}

// Lower-case hex without leading zeros, from tables: half the cost of Number#toString(16) (measured).
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16))
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

function hexGroup(value: number): string {
  return value < 256 ? (HEX[value] as string) : (HEX[value >> 8] as string) + (HEX2[value & 255] as string)
}

function group(index: number): number {
  return groups[index] as number
}

function isIpv4Mapped(): boolean {
  return groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff
}

/**
 * Fills `groups`; false for text that is not an IPv6 address. A zone (`%eth0`) is ignored. One pass
 * over the characters, no splitting: it runs per request for IPv6 callers.
 */
function parseIpv6(text: string): boolean {
  const zone = text.indexOf('%')
  const end = zone === -1 ? text.length : zone
  let count = 0
  let gap = -1 // the group index `::` stands at
  let i = 0
  if (text.charCodeAt(0) === COLON) {
    if (text.charCodeAt(1) !== COLON) return false
    gap = 0
    i = 2
  }
  while (i < end) {
    let value = 0
    let j = i
    for (; j < end && j - i <= 4; j++) {
      const digit = hexDigit(text.charCodeAt(j))
      if (digit === -1) break
      value = value * 16 + digit
    }
    if (text.charCodeAt(j) === DOT) return count <= 6 && ipv4Tail(text, i, end, count) && spread(count + 2, gap)
    if (j === i || j - i > 4 || count === 8) return false
    groups[count++] = value
    if (j === end) break
    if (text.charCodeAt(j) !== COLON) return false
    if (text.charCodeAt(j + 1) === COLON) {
      if (gap !== -1) return false
      gap = count
      i = j + 2
    } else {
      i = j + 1
      if (i === end) return false
    }
  }
  return spread(count, gap)
}

const COLON = 58
const DOT = 46

function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48
  if (code >= 97 && code <= 102) return code - 87
  if (code >= 65 && code <= 70) return code - 55
  return -1
}

/** `a.b.c.d` from `start` to `end` into groups `at` and `at + 1`. */
function ipv4Tail(text: string, start: number, end: number, at: number): boolean {
  let address = 0
  let octets = 0
  let value = 0
  let digits = 0
  for (let i = start; i <= end; i++) {
    const code = i === end ? DOT : text.charCodeAt(i)
    if (code === DOT) {
      if (digits === 0 || value > 255 || ++octets > 4) return false
      address = address * 256 + value
      value = 0
      digits = 0
    } else if (code >= 48 && code <= 57 && digits < 3) {
      value = value * 10 + code - 48
      digits++
    } else {
      return false
    }
  }
  if (octets !== 4) return false
  groups[at] = Math.floor(address / 65536)
  groups[at + 1] = address % 65536
  return true
}

/** Moves the groups after `::` to the end and zeroes what it stands for; checks there are 8. */
function spread(count: number, gap: number): boolean {
  if (gap === -1) return count === 8
  if (count >= 8) return false // `::` stands for at least one group
  const after = count - gap
  for (let k = 1; k <= after; k++) groups[8 - k] = groups[count - k] as number
  for (let k = gap; k < 8 - after; k++) groups[k] = 0
  return true
}
