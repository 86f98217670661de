// Where a browser goes back to after signing in: only a path on this gateway. Every way a string
// can leave the origin once a browser reads it as a Location is refused: a scheme or a host
// (`https://evil.example`), a network path (`//evil.example`), a backslash (`/\evil.example`,
// which browsers read as `//`), control characters and whitespace (browsers drop tabs and
// newlines, so `/\t/evil.example` is `//evil.example`), and anything URL resolution moves off the
// origin. oauth2-proxy's open-redirect CVEs (2020-4037, 2021-21291) are the test list. What comes
// back is the path as URL resolution writes it: dot segments resolved, non-ASCII percent-encoded.

const MAX_RETURN_TO = 2_048
const PROBE_ORIGIN = 'http://return-to.invalid'

/** The path to come back to, or null when `target` is not a path on this gateway. */
export function safeReturnTo(target: string): string | null {
  if (target.length === 0 || target.length > MAX_RETURN_TO) return null
  if (target[0] !== '/' || target[1] === '/' || target[1] === '\\') return null
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u0020\u007f]/.test(target)) return null
  let resolved: URL
  try {
    resolved = new URL(target, PROBE_ORIGIN)
  } catch {
    return null
  }
  if (resolved.origin !== PROBE_ORIGIN) return null
  // The resolved form, percent-encoded: a raw non-ASCII character (/app/€) is no valid Location,
  // and Node refused it with a 500 after the person had signed in (an adversarial probe).
  const path = resolved.pathname + resolved.search + resolved.hash
  // Resolution can make a network path of dot segments (/.//evil.example is //evil.example): checked again.
  if (path.length > MAX_RETURN_TO || path[1] === '/') return null
  // Encoded slashes and backslashes at the start are decoded by some servers after the redirect.
  if (/^\/(%2f|%5c)/i.test(target) || /^\/(%2f|%5c)/i.test(path)) return null
  return path
}
