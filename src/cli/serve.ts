import type { Command } from 'commander'
import { setTimeout as sleep } from 'node:timers/promises'
import { heldThreads, LogLevelError, warnNow, type Logger } from '../telemetry/index.ts'
import { ConfigError, StartLeftHeldWorkers, startServing, type ShutdownOutcome } from '../instance/index.ts'
import { SecretsError } from '../secrets/index.ts'
import { printable } from '../text/index.ts'
import { configOption, findConfig } from './config.ts'
import { takeEarlyHangup } from './early-hangup.ts'
import { keepServingOnUnhandledRejection } from './last-resort.ts'
import { portArgument } from './port-argument.ts'
import { UserError } from './user-error.ts'

/** After an uncaught exception, how long past shutdown_timeout the drain may take before a hard exit. */
const HARD_EXIT_MARGIN_MS = 5_000

/** After the drain, how long a file operation still under way may take before the process ends without it. */
const PENDING_FILE_GRACE_MS = 2_000

/**
 * Exits once the file operations under way have returned. process.exit waits for them (libuv joins
 * its thread pool at exit), and one that never returns (a read of a hung network file system, or of
 * a named pipe nobody writes, which a reload's config read can be) held the process for ever after
 * a finished drain. Past the grace, the process ends without it: the audit log is closed by then.
 * This thread's operations are seen here; a worker thread held in one (server.workers) is reported
 * by the shutdown, a function's thread by heldThreads(), and Node's exit would wait to join either,
 * so the process ends at once then.
 */
async function exitWhenSettled(code: number, logger: Logger, outcome: ShutdownOutcome): Promise<void> {
  const endWithout = (fields: object, what: string) => {
    // Log lines are written in the background (telemetry/logger.ts): this one before the signal.
    warnNow(logger, fields, `${what}: the process ends without it (SIGKILL)`)
    process.kill(process.pid, 'SIGKILL')
  }
  if (outcome.heldWorkers.length > 0) endWithout({ workers: outcome.heldWorkers }, 'a worker thread held in a system call did not end with the drain')
  const held = await heldThreads()
  if (held.length > 0) endWithout({ threads: held }, "a function's thread held in a system call (its handler's read of a hung file system) did not end when stopped")
  const pending = () => process.getActiveResourcesInfo().filter((resource) => resource.startsWith('FSReq')).length
  const deadline = Date.now() + PENDING_FILE_GRACE_MS
  while (pending() > 0 && Date.now() < deadline) await sleep(20)
  if (pending() > 0) endWithout({ pending: pending() }, 'a file operation has not returned since the drain ended (a hung file system, a named pipe nobody writes)')
  process.exit(code)
}

/** Why the gateway did not start, as the user reads it (a config's errors are printed first, one a line). */
function startFailure(err: unknown, configFile: string): unknown {
  if (err instanceof ConfigError) {
    for (const line of err.lines) console.error(line)
    return new UserError(`refusing to start: ${configFile} has ${err.lines.length} error${err.lines.length === 1 ? '' : 's'}`)
  }
  if (listenFailed(err)) return new UserError(`cannot listen: ${(err as Error).message}`)
  // A BOUNCER_LOG_LEVEL that names no level: the operator's to fix, as a config's error is.
  if (err instanceof LogLevelError) return new UserError(err.message)
  // The secrets store's file (locked by another process, damaged, replaced): the operator's to fix,
  // and said so; a first start that could not write its key there was an "internal error" (the secrets probe).
  if (err instanceof SecretsError) return new UserError(err.message)
  return err
}

/** What binding a listener fails with where the address is the operator's to fix (a port taken, an address of another host, a port below 1024, a host name that does not resolve). */
const LISTEN_CODES = new Set(['EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES', 'EPERM', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME'])

/**
 * A listener's bind or its host's lookup failed: only EADDRINUSE was said so, and an address
 * `check` accepts but this host has not (a config copied from another machine) was "internal
 * error" (found by an adversarial probe). By Node's own words for the two calls, as a worker
 * thread's failure carries only the message and the code, and a file's EACCES is not a listen's.
 */
function listenFailed(err: unknown): boolean {
  const { code, message } = err as NodeJS.ErrnoException
  return code !== undefined && LISTEN_CODES.has(code) && /^(listen|getaddrinfo) /.test(String(message))
}

interface ServeOptions {
  config?: string
  port?: string
  adminPort?: string
}

function portOption(value: string | undefined, flag: string): number | undefined {
  return value === undefined ? undefined : portArgument(value, flag)
}

export function registerServe(program: Command): void {
  configOption(program
    .command('serve')
    .description('run the gateway (SIGTERM/SIGINT: drain and exit; SIGHUP: reload the config)'))
    .option('--port <n>', 'gateway port (overrides server.listen)')
    .option('--admin-port <n>', 'admin port (overrides admin.listen)')
    .action(async (opts: ServeOptions) => {
      const configFile = findConfig(opts.config)
      // A SIGHUP while the gateway starts (a reload asked for just after a start) ended the process,
      // Node's default for it. It is kept for when the gateway runs: the edit that prompted it may
      // have been saved after the start read the file.
      //
      // A SIGTERM or SIGINT while the gateway starts (a rollout that replaces a pod still starting)
      // ended the process on Node's default, 143 and not a word. It is kept, and the gateway stops
      // the usual way once it is up (its drain: nothing in flight yet); a second one stops it at once.
      //
      // One listener per signal for the life of the process, which acts by the gateway's state: a
      // listener swapped for another once the gateway ran lost a signal caught in the same turn
      // (libuv hands it to the handle that caught it, stopped by then: a SIGTERM sent as the start
      // ended left the gateway running, found by slow-and-many.test.ts).
      let reloadAsked = false
      let stopAskedWhileStarting: NodeJS.Signals | null = null
      let running: { reload(): void; stop(signal: NodeJS.Signals): void } | null = null
      process.on('SIGHUP', () => (running ? running.reload() : void (reloadAsked = true)))
      if (takeEarlyHangup()) reloadAsked = true
      const onStopSignal = (signal: NodeJS.Signals) => {
        if (running) return running.stop(signal)
        if (stopAskedWhileStarting !== null) {
          console.error(`bouncer: ${signal} again while starting: stopping at once`)
          process.exit(1)
        }
        stopAskedWhileStarting = signal
        console.error(`bouncer: ${signal} while starting: the gateway stops as soon as its start ends`)
      }
      process.on('SIGTERM', onStopSignal)
      process.on('SIGINT', onStopSignal)
      let gateway
      try {
        gateway = await startServing({
          configFile,
          port: portOption(opts.port, '--port'),
          adminPort: portOption(opts.adminPort, '--admin-port'),
        })
      } catch (err) {
        if (!(err instanceof StartLeftHeldWorkers)) throw startFailure(err, configFile)
        // Node's exit would wait to join the held threads for ever: say why the start failed, then end.
        const failure = startFailure(err.cause, configFile)
        // As main.ts words it: a user's problem as it is, anything else an internal error.
        const message = failure instanceof Error ? failure.message : String(failure)
        console.error(`bouncer: ${failure instanceof UserError ? '' : 'internal error: '}${printable(message)}`)
        console.error(`bouncer: worker thread${err.heldWorkers.length === 1 ? '' : 's'} ${err.heldWorkers.join(', ')} held in a system call did not end after the failed start: the process ends without ${err.heldWorkers.length === 1 ? 'it' : 'them'} (SIGKILL)`)
        process.kill(process.pid, 'SIGKILL')
        return
      }
      let stopping = false
      let crashed = false
      const stop = (reason: string) => {
        if (stopping) return
        stopping = true
        gateway.logger.info({ signal: reason }, 'draining')
        gateway.shutdown().then(
          (outcome) => exitWhenSettled(crashed ? 1 : 0, gateway.logger, outcome),
          (err: unknown) => {
            gateway.logger.error({ err }, 'shutdown failed')
            process.exit(1)
          },
        )
      }
      const reload = () => void gateway.background.run('reload', () => gateway.reload())
      running = { reload, stop }
      if (reloadAsked) reload()

      // The last resort, for what no background task caught (each reports its own failures).
      keepServingOnUnhandledRejection(gateway.background)
      // An uncaught exception left a function half done: Node's documentation says the process is
      // then in an undefined state and must not resume normal operation. So it does not: logged
      // with its stack and counted, no new connections, the requests in flight get the
      // shutdown_timeout to finish (their responses and audit records are not lost, as on SIGTERM),
      // then exit 1 for the supervisor to start a clean process. A drain that cannot finish, or a
      // second exception during it, exits at once.
      process.on('uncaughtException', (err) => {
        gateway.background.failed('uncaught_exception', err, { message: 'an uncaught exception: draining, then exiting 1' })
        if (crashed) process.exit(1)
        crashed = true
        setTimeout(() => process.exit(1), gateway.shutdownTimeout() + HARD_EXIT_MARGIN_MS)
        stop('uncaughtException')
      })
      // Announced last: a supervisor or test that signals the process as soon as it reads these
      // lines must find the handlers installed (Node 24 measured: a SIGHUP sent on reading them
      // killed 12 of 15 processes that installed their handler after printing).
      console.log(`gateway listening on ${gateway.url}`)
      console.log(`admin listening on ${gateway.adminUrl}`)
      if (!gateway.config().admin.token) {
        console.error('admin API disabled: no admin.token is configured, so /api/* answers 401') // a finding: stderr
      }
      if (stopAskedWhileStarting !== null) stop(stopAskedWhileStarting)
    })
}
