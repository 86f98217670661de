// `bouncer healthcheck`: exit 0 when the configured gateway answers ready on its admin listener
// (GET /readyz), 1 otherwise. The container image's HEALTHCHECK runs it, so the probe follows
// admin.listen (or BOUNCER_ADMIN_LISTEN) wherever the config puts it, not a port baked into the image.
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { parse, stringify } from 'yaml'
import { listenUrl, loadConfigFile, loadConfigText, MAX_TIMER_MS, parseDuration, type ListenAddress } from '../config/index.ts'
import { configOption, findConfig } from './config.ts'
import { UserError } from './user-error.ts'

/** Where to reach a listener bound to every address (0.0.0.0, ::) from the same host. */
function reachable({ host, port }: ListenAddress): string {
  const local = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  return listenUrl(local, port)
}

/**
 * The admin address. A file that no longer validates (an edit the running gateway refused to
 * reload) still names it: a health check must not fail a gateway that serves its previous config.
 */
async function adminListen(file: string): Promise<ListenAddress> {
  const loaded = await loadConfigFile(file)
  if (loaded.config) return loaded.config.admin.listen
  let written: unknown
  try {
    written = (parse(await readFile(file, 'utf8')) as { admin?: { listen?: unknown } } | null)?.admin?.listen
  } catch {
    written = undefined
  }
  // Only the admin address, through the loader: ${env:} references, BOUNCER_ADMIN_LISTEN and the default as serve sees them.
  const adminOnly = loadConfigText(stringify(written === undefined ? {} : { admin: { listen: written } }), file)
  if (!adminOnly.config) throw new UserError(`${file} names no usable admin.listen (see bouncer check)`)
  return adminOnly.config.admin.listen
}

export function registerHealthcheck(program: Command): void {
  configOption(program
    .command('healthcheck')
    .description("exit 0 when the configured gateway answers ready on its admin listener (/readyz), 1 otherwise: a container's HEALTHCHECK")
    .option('--timeout <duration>', 'how long to wait for the answer', '3s'))
    .action(async (opts: { config?: string; timeout: string }) => {
      const timeout = parseDuration(opts.timeout)
      if (!timeout.ok) throw new UserError(`--timeout: ${timeout.message}`, 2)
      // Node runs a longer timer at once: the check would give up after 1 ms.
      if (timeout.value > MAX_TIMER_MS) throw new UserError('--timeout: at most 24d', 2)
      // No time to answer in: a ready gateway was "not ready" at every check, the container unhealthy for good.
      if (timeout.value === 0) throw new UserError('--timeout: must be more than 0 (e.g. 3s)', 2)
      const listen = await adminListen(findConfig(opts.config))
      // Port 0 is picked when the gateway starts, and no file says which: asking port 0 was "no answer (ECONNREFUSED)".
      if (listen.port === 0) throw new UserError('admin.listen has port 0, which the gateway picks as it starts: give admin.listen a fixed port for the health check to ask')
      const url = `${reachable(listen)}/readyz`
      let response: Response
      let body: string
      try {
        response = await fetch(url, { signal: AbortSignal.timeout(timeout.value) })
        // Within the timeout too: an answer whose body stalled was an internal error, not "not ready".
        body = await response.text()
      } catch (err) {
        if ((err as Error).name === 'TimeoutError') throw new UserError(`not ready: ${url}: no answer within ${opts.timeout.trim()}`)
        const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name
        throw new UserError(`not ready: ${url}: no answer (${cause})`)
      }
      if (response.status !== 200) throw new UserError(`not ready: ${url} answered ${response.status} ${body.slice(0, 500)}`)
      console.log(`ready: ${url}`)
    })
}
