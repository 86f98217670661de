// A secret read from standard input rather than the command line, which ps shows and the shell's
// history keeps: `bouncer secrets put`'s value, `bouncer explain --token -`'s key or token.
import { UserError } from './user-error.ts'

/** The text on stdin without one trailing newline; `example` shows how to give it (refused on a terminal). */
export async function readStdin(example: string): Promise<string> {
  if (process.stdin.isTTY) throw new UserError(`give the value on stdin, e.g. ${example}`, 2)
  let text = ''
  for await (const chunk of process.stdin) text += chunk
  const value = text.replace(/\r?\n$/, '')
  if (value === '') throw new UserError('the value on stdin is empty')
  return value
}
