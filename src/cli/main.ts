// `bouncer`: commands are registered from one file each. Exit codes (SPEC): 0 success, 1 a finding
// or a user error (one line, no stack trace), 2 a usage error.
import { Command, CommanderError } from 'commander'
import { registerApprovals } from './approvals.ts'
import { registerAudit } from './audit.ts'
import { registerCheck } from './check.ts'
import { registerDemo } from './demo.ts'
import { takeEarlyHangup } from './early-hangup.ts'
import { registerExplain } from './explain.ts'
import { registerHealthcheck } from './healthcheck.ts'
import { registerKeys } from './keys.ts'
import { registerSchema } from './schema.ts'
import { registerSecrets } from './secrets.ts'
import { registerSessions } from './sessions.ts'
import { printable } from '../text/index.ts'
import { registerServe } from './serve.ts'
import { UserError } from './user-error.ts'
import { versionLine } from './version.ts'

export function buildProgram(): Command {
  const program = new Command('bouncer')
    .description('Bouncer: an identity-aware API gateway')
    .version(versionLine(), '-v, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride()
  registerServe(program)
  registerCheck(program)
  registerExplain(program)
  registerAudit(program)
  registerSecrets(program)
  registerKeys(program)
  registerSessions(program)
  registerSchema(program)
  registerHealthcheck(program)
  registerDemo(program)
  registerApprovals(program)
  // Every command but serve gets a SIGHUP that came while the modules loaded as Node would: it ends.
  program.hook('preAction', (_program, command) => {
    if (command.name() !== 'serve' && takeEarlyHangup()) process.kill(process.pid, 'SIGHUP')
    if (command.name() !== 'serve') process.stdout.on('error', endQuietlyOnClosedOutput)
  })
  const all = (command: Command): Command[] => [command, ...command.commands.flatMap(all)]
  for (const command of all(program)) command.exitOverride()
  return program
}

/**
 * A reader that stops early (`bouncer schema | head -1`) ends the command quietly, as SIGPIPE ends
 * other programs (Node ignores it): the write's EPIPE was an unhandled 'error' event, a stack trace
 * and exit 1 (found by an adversarial probe). Any other failure of stdout is still thrown.
 */
function endQuietlyOnClosedOutput(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') throw err
  process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0)
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram()
  try {
    await program.parseAsync(argv)
  } catch (err) {
    process.exitCode = exitCodeOf(err)
  }
}

function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help and --version end here with exit code 0; anything else is a usage error.
    return err.exitCode === 0 ? 0 : 2
  }
  if (err instanceof UserError) {
    console.error(`bouncer: ${printable(err.message)}`) // messages echo names and values the user or a file gave
    return err.exitCode
  }
  // A bug, not the user's doing: still one line unless asked for the stack.
  const message = err instanceof Error ? err.message : String(err)
  console.error(`bouncer: internal error: ${printable(message)}`)
  if (process.env.BOUNCER_DEBUG && err instanceof Error) console.error(err.stack)
  return 1
}
