// A held form or JSON body as the frameworks that decode one read it (form-body.ts holds it for its
// `_method`). Express's body-parser inflates a gzip, deflate or (body-parser 2) br body before it
// parses it; Laravel, Rails and Symfony read the bytes as they came, whatever the Content-Encoding.
// The gateway reads both, and a `_method` in either is decided: a gzip body was refused (400) where
// it could be read, and real clients send gzip JSON.
import { promisify } from 'node:util'
import { brotliDecompress, gunzip, inflate } from 'node:zlib'
import { GatewayError } from '../errors/index.ts'

const DECODERS = {
  gzip: promisify(gunzip),
  'x-gzip': promisify(gunzip),
  deflate: promisify(inflate),
  br: promisify(brotliDecompress),
} as const

type KnownCoding = keyof typeof DECODERS

/**
 * The request's one Content-Encoding, lower-cased; null for none (or `identity`). A list of codings
 * or several fields is refused (400): body-parser refuses them too (415), but a framework reading
 * the bytes as they came would not, and decoding a chain to agree with every reader is not worth it.
 */
export function contentCoding(rawHeaders: readonly string[], what: string): string | null {
  let found: string | null = null
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() !== 'content-encoding') continue
    const coding = (rawHeaders[i + 1] as string).trim().toLowerCase()
    if (coding === '' || coding === 'identity') continue
    if (found !== null || coding.includes(',')) {
      throw new GatewayError('bad_request', { detail: `${what} is not accepted with more than one Content-Encoding: the gateway reads its _method, decoded as body-parser decodes one coding.` })
    }
    found = coding
  }
  return found
}

/**
 * The body decoded as body-parser decodes `coding`, at most `maxBytes` of it (413 past that: a
 * small gzip body can inflate to gigabytes); null for a coding body-parser does not decode (it
 * answers 415) or bytes that do not decode (it answers 400): no reading but the bytes' own.
 * Decoded off the event loop (zlib's thread pool).
 */
export async function decodedBody(body: Buffer, coding: string, maxBytes: number): Promise<Buffer | null> {
  if (!Object.hasOwn(DECODERS, coding)) return null
  try {
    return await DECODERS[coding as KnownCoding](body, { maxOutputLength: Math.max(1, maxBytes) })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new GatewayError('payload_too_large', { detail: `The body, decoded from its Content-Encoding "${coding}", is over server.max_body_bytes (${maxBytes} bytes): the gateway reads its _method as a framework that decodes it would.` })
    }
    return null
  }
}
