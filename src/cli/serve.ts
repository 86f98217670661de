import type { Command } from 'commander'
import { resolveConfigPath } from '../config/index.ts'
import { ConfigError, startGateway } from '../gateway/instance.ts'
import { UserError } from './user-error.ts'

interface ServeOptions {
  config?: string
  port?: string
  adminPort?: string
}

function portOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined
  const port = Number(value)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UserError(`${flag} must be a port number (0-65535)`, 2)
  return port
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the gateway (SIGTERM/SIGINT: drain and exit; SIGHUP: reload the config)')
    .option('--config <path>', 'config file (default: $BOUNCER_CONFIG or ./bouncer.yaml)')
    .option('--port <n>', 'gateway port (overrides server.listen)')
    .option('--admin-port <n>', 'admin port (overrides admin.listen)')
    .action(async (opts: ServeOptions) => {
      const configFile = resolveConfigPath(opts.config)
      let gateway
      try {
        gateway = await startGateway({
          configFile,
          port: portOption(opts.port, '--port'),
          adminPort: portOption(opts.adminPort, '--admin-port'),
        })
      } catch (err) {
        if (err instanceof ConfigError) {
          for (const line of err.lines) console.error(line)
          throw new UserError(`refusing to start: ${configFile} has ${err.lines.length} error${err.lines.length === 1 ? '' : 's'}`)
        }
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UserError(`cannot listen: ${(err as Error).message}`)
        throw err
      }
      console.log(`gateway listening on ${gateway.url}`)
      console.log(`admin listening on ${gateway.adminUrl}`)
      if (!gateway.state.runtime.config.admin.token) {
        console.log('admin API disabled: no admin.token is configured, so /api/* answers 401')
      }

      let stopping = false
      const stop = (signal: string) => {
        if (stopping) return
        stopping = true
        gateway.logger.info({ signal }, 'draining')
        gateway.shutdown().then(
          () => process.exit(0),
          (err: unknown) => {
            gateway.logger.error({ err }, 'shutdown failed')
            process.exit(1)
          },
        )
      }
      process.on('SIGTERM', () => stop('SIGTERM'))
      process.on('SIGINT', () => stop('SIGINT'))
      process.on('SIGHUP', () => {
        void gateway.reload()
      })
    })
}
