// BOUNCER_LOG_LEVEL, which the README gives as the log level when telemetry.log_level is not set:
// the config's default (info) made log_level always set, and `bouncer serve` never read the
// variable — at error, every info line was still written; at debug, none of the debug lines.
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, expect, it } from 'vitest'
import { serveConfig, type ServeProcess } from '../helpers/cli.ts'
import { waitForText } from '../helpers/wait.ts'

const ADMIN = 'log-level-admin-token-0123456789'
let serve: (ServeProcess & { dir: string }) | undefined

afterEach(async () => {
  await serve?.stop()
  serve = undefined
})

function start(telemetry: Record<string, unknown>, env: NodeJS.ProcessEnv) {
  return serveConfig((dir) => ({
    admin: { token: ADMIN },
    telemetry,
    // The audit worker says it is ready at debug level.
    audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }], spill_dir: join(dir, 'spill') },
    upstreams: [{ name: 'api', url: 'http://127.0.0.1:9' }],
    routes: [{ id: 'all', path: '/*', upstream: 'api', public: true }],
  }), { env })
}

async function reload(adminUrl: string): Promise<void> {
  const res = await request(`${adminUrl}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } })
  await res.body.dump()
  expect(res.statusCode).toBe(200)
}

/** The levels of the JSON log lines written so far. */
const levels = (stderr: string): string[] => stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => (JSON.parse(line) as { level: string }).level)

it('BOUNCER_LOG_LEVEL=error: no info line (a reload, an admin call) is written', async () => {
  serve = await start({}, { BOUNCER_LOG_LEVEL: 'error' })
  await reload(serve.adminUrl)
  // The admin API call is logged at info too; give the lines time to come.
  await new Promise((resolve) => setTimeout(resolve, 300))
  expect(serve.stderr()).not.toContain('config reloaded')
  expect(levels(serve.stderr()).filter((level) => level !== 'error' && level !== 'fatal')).toEqual([])
})

it('BOUNCER_LOG_LEVEL=debug: the debug lines are written', async () => {
  serve = await start({}, { BOUNCER_LOG_LEVEL: 'debug' })
  await waitForText(() => serve?.stderr() ?? '', 'audit worker ready')
})

it('telemetry.log_level wins over BOUNCER_LOG_LEVEL', async () => {
  serve = await start({ log_level: 'info' }, { BOUNCER_LOG_LEVEL: 'error' })
  await reload(serve.adminUrl)
  await waitForText(() => serve?.stderr() ?? '', 'config reloaded')
  expect(serve.stderr()).not.toContain('audit worker ready')
})
