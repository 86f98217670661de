// A secret read from standard input rather than the command line, which ps shows and the shell's
// history keeps: `bouncer secrets put`'s value, `bouncer explain --token -`'s key or token.
import { UserError } from './user-error.ts'

/** Far more than a token, a password or a PEM key (a few KB); a header cannot carry more than 16 KB. */
const MAX_STDIN_BYTES = 1024 * 1024

/** The text on stdin without one trailing newline; `example` shows how to give it (refused on a terminal). */
export async function readStdin(example: string): Promise<string> {
  if (process.stdin.isTTY) throw new UserError(`give the value on stdin, e.g. ${example}`, 2)
  // Decoded whole, not chunk by chunk: a character split across two 64 KB reads became two U+FFFD,
  // and bytes that are not UTF-8 were replaced the same way; either stored a value the user never gave.
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of process.stdin) {
    bytes += (chunk as Buffer).length
    // Read whole however large, a wrong file (or /dev/zero) took memory until it ran out, or was
    // stored as a secret (found by the operator probe). Breaking out of the loop stops the reading.
    if (bytes > MAX_STDIN_BYTES) throw new UserError('the value on stdin is over 1 MiB: a secret is a token, a password or a key')
    chunks.push(chunk as Buffer)
  }
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))
  } catch {
    throw new UserError('the value on stdin is not UTF-8 text: give a binary value encoded, e.g. base64')
  }
  const value = text.replace(/\r?\n$/, '')
  if (value === '') throw new UserError('the value on stdin is empty')
  return value
}
