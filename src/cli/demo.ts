// `bouncer demo` (what `npm start` runs): an OpenID provider, the data API and the gateway on
// loopback, a scripted tour run once, and the curl lines to try; Ctrl-C stops everything.
import type { Command } from 'commander'
import { ConfigError } from '../instance/index.ts'
import type { RunningDemo } from '../demo/index.ts'
import { LogLevelError, logLevelFromEnv } from '../telemetry/index.ts'
import { printable } from '../text/index.ts'
import { keepServingOnUnhandledRejection } from './last-resort.ts'
import { portArgument } from './port-argument.ts'
import { UserError } from './user-error.ts'

interface DemoFlags {
  port: string
  adminPort: string
  idpPort: string
  apiPort: string
  dataDir: string
  tour: boolean
}

/**
 * The demo's modules, loaded only for `bouncer demo`: its OpenID provider (oidc-provider) is a
 * development dependency, which `serve` and the container image do without.
 */
async function demoModules() {
  try {
    const { startDemo, runTour, consoleLine, providerAccounts } = await import('../demo/index.ts') // lazily: serve never loads the demo's provider
    return { startDemo, runTour, consoleLine, providerAccounts }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && /oidc-provider|openid-client/.test((err as Error).message)) {
      throw new UserError('bouncer demo needs the development dependencies (its OpenID provider): run it from a checkout after npm install')
    }
    throw err
  }
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the quick start: an OpenID provider, a data API and the gateway on loopback, a tour, and curl lines to try')
    .option('--port <n>', 'gateway port', '8080')
    .option('--admin-port <n>', 'admin port', '9090')
    .option('--idp-port <n>', 'OpenID provider port', '9400')
    .option('--api-port <n>', 'demo data API port (0: any free port)', '0')
    .option('--data-dir <path>', 'master key, secrets and audit log', './data')
    .option('--no-tour', 'start everything but skip the tour')
    .action(async (flags: DemoFlags) => {
      // A BOUNCER_LOG_LEVEL that names no level is the user's to fix, as serve says: refused before
      // the demo writes its data directory or listens (it was "internal error").
      try {
        if (process.env.BOUNCER_LOG_LEVEL) logLevelFromEnv()
      } catch (err) {
        if (err instanceof LogLevelError) throw new UserError(err.message)
        throw err
      }
      const { startDemo, runTour, consoleLine, providerAccounts } = await demoModules()
      let demo: RunningDemo
      try {
        demo = await startDemo({
          port: portArgument(flags.port, '--port'),
          adminPort: portArgument(flags.adminPort, '--admin-port'),
          idpPort: portArgument(flags.idpPort, '--idp-port'),
          apiPort: portArgument(flags.apiPort, '--api-port'),
          dataDir: flags.dataDir,
        })
      } catch (err) {
        if (err instanceof ConfigError) throw new UserError(err.message)
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new UserError(`${(err as Error).message}: pass --port, --admin-port and --idp-port to use other ports`)
        }
        throw err
      }
      // One stop, however many ask (a signal, an exception): a second demo.stop() found the gateway
      // draining already and exited before the first drain had closed the audit log.
      let stopping: Promise<void> | null = null
      let exitCode = 0
      const stop = (code = 0) => {
        exitCode = Math.max(exitCode, code)
        stopping ??= demo.stop().then(() => process.exit(exitCode))
      }
      process.once('SIGINT', () => stop()) // once: a second Ctrl-C ends the process at once, Node's default
      process.once('SIGTERM', () => stop())
      // As serve: a stray rejection is logged and the demo goes on; an uncaught exception is logged
      // and everything stops, its audit log closed (Node's default ended it at once, mid-write).
      keepServingOnUnhandledRejection(demo.gateway.background)
      process.on('uncaughtException', (err) => {
        demo.gateway.background.failed('uncaught_exception', err, { message: 'an uncaught exception: the demo stops' })
        if (exitCode !== 0) process.exit(1) // a second, while stopping: at once
        stop(1)
      })

      const print = (line = '') => console.log(printable(line)) // the tour echoes subjects and refusals
      print(`gateway listening on ${demo.gateway.url}`)
      print(`admin listening on ${demo.gateway.adminUrl}`)
      print(`OpenID provider on ${demo.issuer} (${providerAccounts()})`)
      print(`demo data API on ${demo.apiUrl} (it answers only the gateway)`)
      print(consoleLine(demo))
      print(demo.firstRun
        ? `first run: generated a master key in ${demo.masterKeyFile} and stored the data API's credential and the admin token, encrypted, in ${demo.dataDir}/secrets.db`
        : `secrets: the master key in ${demo.masterKeyFile} opened ${demo.dataDir}/secrets.db`)
      print()
      if (flags.tour) {
        try {
          await runTour(demo, print)
        } catch (err) {
          console.error(printable(`the tour failed: ${(err as Error).message}`))
        }
        print()
      }
      print('Ctrl-C stops everything.')
    })
}
