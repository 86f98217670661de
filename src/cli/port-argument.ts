import { UserError } from './user-error.ts'

/**
 * A `--port`-like argument: decimal digits, 0 to 65535 (0 picks a free one). Read by Number, an
 * empty argument (`--port "$PORT"`, PORT unset) was port 0, a free port and no word, and `0x50`
 * was 80, `1e3` 1000 (found by an adversarial probe).
 */
export function portArgument(value: string, flag: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN
  if (!(port >= 0 && port <= 65_535)) throw new UserError(`${flag} must be a port number (0-65535)`, 2)
  return port
}
