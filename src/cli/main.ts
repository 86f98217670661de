// `bouncer`: commands are registered from one file each. Exit codes (SPEC): 0 success, 1 a finding
// or a user error (one line, no stack trace), 2 a usage error.
import { Command, CommanderError } from 'commander'
import { takeEarlyHangup } from './early-hangup.ts'
import { printable } from '../text/index.ts'
import { UserError } from './user-error.ts'
import { versionLine } from './version.ts'

type Register = (program: Command) => void

/**
 * Each command's module, loaded when it runs: one that loads them all loaded 273 of the gateway's
 * modules for `bouncer --version` or `bouncer keys list` (0.5–0.7 s of CPU at every start, a
 * hundred starts a test run). In the order `--help` lists them.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  serve: async () => (await import('./serve.ts')).registerServe,
  check: async () => (await import('./check.ts')).registerCheck,
  explain: async () => (await import('./explain.ts')).registerExplain,
  audit: async () => (await import('./audit.ts')).registerAudit,
  secrets: async () => (await import('./secrets.ts')).registerSecrets,
  keys: async () => (await import('./keys.ts')).registerKeys,
  sessions: async () => (await import('./sessions.ts')).registerSessions,
  schema: async () => (await import('./schema.ts')).registerSchema,
  healthcheck: async () => (await import('./healthcheck.ts')).registerHealthcheck,
  demo: async () => (await import('./demo.ts')).registerDemo,
  approvals: async () => (await import('./approvals.ts')).registerApprovals,
}

/**
 * The program with the command `argv` names registered, or every command where it names none of
 * them (help, a usage error's list, an unknown command's suggestion); none for the version alone.
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('bouncer')
    .description('Bouncer: an identity-aware API gateway')
    .version(versionLine(), '-v, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride()
  const [first] = argv.slice(2)
  const names = first !== undefined && Object.hasOwn(COMMANDS, first) ? [first] : first === '-v' || first === '--version' ? [] : Object.keys(COMMANDS)
  for (const register of await Promise.all(names.map((name) => (COMMANDS[name] as () => Promise<Register>)()))) register(program)
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
  const program = await buildProgram(argv)
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
