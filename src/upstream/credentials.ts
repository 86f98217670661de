// The credentials the gateway sends a server in its configured headers (an upstream's, an MCP
// server's), looked for in what the server says back: an echo of one must not reach the client,
// who never holds it.
import { MIN_REDACTED_LENGTH } from '../telemetry/index.ts'

/** The headers whose values are credentials by their name. */
const CREDENTIAL_HEADER = /auth|key|token|secret|cookie|session|password|credential/i

/**
 * The credential headers' values: a header named as one, or built from a secret whatever its name
 * (`fromSecret`, lower case: `X-Signature: ${secret:…}`); not the others (`accept:
 * application/json` is no secret: looking for it blanked ordinary words). A value, the value after
 * its scheme (`Bearer …`), and a `Basic` credential's user:password and password, decoded; none
 * shorter than MIN_REDACTED_LENGTH.
 */
export function credentialValues(headers: Iterable<readonly [name: string, value: string]>, fromSecret: ReadonlySet<string>): string[] {
  const values: string[] = []
  for (const [name, value] of headers) {
    if (!CREDENTIAL_HEADER.test(name) && !fromSecret.has(name.toLowerCase())) continue
    for (const secret of [value, value.replace(/^\S+\s+/, ''), ...basicParts(value)]) {
      if (secret.length >= MIN_REDACTED_LENGTH && !values.includes(secret)) values.push(secret)
    }
  }
  return values
}

/** How many rotated-out credential values are still withheld (a few rotations' worth), as an MCP server's are. */
const MAX_ROTATED_OUT = 16

/**
 * The rotated-out values still withheld once `now` is sent: those of `before` that `now` replaced,
 * then the `earlier` ones, newest first, each once. A refresh that changed nothing forgets none.
 */
export function rotatedOut(before: readonly string[], earlier: readonly string[], now: readonly string[]): string[] {
  return [...before, ...earlier].filter((value, i, all) => !now.includes(value) && all.indexOf(value) === i).slice(0, MAX_ROTATED_OUT)
}

/** A `Basic` credential's `user:password` and password, decoded (a server may echo them so). */
function basicParts(value: string): string[] {
  const encoded = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(value.trim())?.[1]
  if (encoded === undefined) return []
  const decoded = Buffer.from(encoded, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon === -1 ? [decoded] : [decoded, decoded.slice(colon + 1)]
}

/**
 * Does `text` hold a value of the headers the gateway added for one request alone (`extraHeaders`,
 * name and value pairs: X-Bouncer-Assertion)? An echoed assertion is a bearer credential its client
 * could send the upstream directly, around the gateway's policy and limits, until it expires (a
 * probe): an answer must not hold it, as it must not hold the upstream's credentials. Looked for
 * apart from those (response.ts), so that no request copies the upstream's list to add its own.
 */
export function holdsSentValue(text: string, extraHeaders: readonly string[]): boolean {
  for (let i = 1; i < extraHeaders.length; i += 2) {
    const value = extraHeaders[i] as string
    if (value.length >= MIN_REDACTED_LENGTH && text.includes(value)) return true
  }
  return false
}
