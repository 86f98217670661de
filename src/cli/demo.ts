// `bouncer demo` (what `npm start` runs): everything on loopback, stopped cleanly by Ctrl-C.
import type { Command } from 'commander'
import { fileURLToPath } from 'node:url'
import { startDataApi } from '../demo/data-api.ts'
import { ConfigError, startGateway } from '../gateway/instance.ts'
import { UserError } from './user-error.ts'

const DEMO_CONFIG = fileURLToPath(new URL('../../examples/demo/bouncer.yaml', import.meta.url))

interface DemoOptions {
  port: string
  adminPort: string
  apiPort: string
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the quick start: a demo data API and the gateway on loopback, with curl lines to try')
    .option('--port <n>', 'gateway port', '8080')
    .option('--admin-port <n>', 'admin port', '9090')
    .option('--api-port <n>', 'demo data API port (0: any free port)', '0')
    .action(async (opts: DemoOptions) => {
      const api = await startDataApi({ port: Number(opts.apiPort) })
      let gateway
      try {
        gateway = await startGateway({
          configFile: DEMO_CONFIG,
          port: Number(opts.port),
          adminPort: Number(opts.adminPort),
          env: { ...process.env, DEMO_API_URL: api.url },
        })
      } catch (err) {
        await api.close()
        if (err instanceof ConfigError) throw new UserError(err.message)
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new UserError(`${(err as Error).message}: pass --port and --admin-port to use other ports`)
        }
        throw err
      }
      console.log(`gateway listening on ${gateway.url}`)
      console.log(`admin listening on ${gateway.adminUrl}`)
      console.log(`demo data API on ${api.url} (only the gateway should call it)`)
      console.log('')
      console.log('Try:')
      console.log(`  curl -s ${gateway.url}/reports/daily/eu`)
      console.log(`  curl -s ${gateway.url}/exports/orders.csv`)
      console.log(`  curl -s ${gateway.url}/reports/daily/..%2fadmin     # 400 bad_path`)
      console.log(`  curl -s ${gateway.url}/nothing-here                 # 404 route_not_found`)
      console.log('')
      console.log('Ctrl-C stops everything.')
      const stop = () => {
        void Promise.allSettled([gateway.shutdown(), api.close()]).then(() => process.exit(0))
      }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
}
