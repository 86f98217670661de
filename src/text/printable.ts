// Values that reach a terminal (a subject, a client id, a path, a config value) are written by
// whoever minted a token or sent a request. Printed raw, an ESC sequence can erase or rewrite the
// rows above it, CR overwrite a line, BEL ring, a C1 CSI (U+009B) act as ESC [, and a bidi override
// (U+202E) or a zero-width character make one subject look like another. So every human-readable
// output passes its values through `printable`; `--json` output is already escaped by JSON.

/**
 * Controls (C0, DEL, C1), format characters (bidi controls, zero-width characters, soft hyphen,
 * BOM, tags), line and paragraph separators and lone surrogates: all invisible or active on a
 * terminal, none needed to read a value.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu

function escaped(character: string): string {
  const code = character.codePointAt(0) as number
  return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`
}

/** `text` with every unprintable character in its visible `\uXXXX` form (ESC → `\u001b`). */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escaped)
}
