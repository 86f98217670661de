// nginx (auth_request) and Caddy (forward_auth) from Debian's packages in front of an API, asking a
// gateway's /.bouncer/auth, each configured with the snippet from docs/forward-auth.md as it is
// written there (only the ports change), run as a child process on loopback.
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { startProcess, type Started } from '../../bench/lib/processes.ts'
import { closedPort } from './faults.ts'
import { waitFor } from './wait.ts'

export const NGINX = '/usr/sbin/nginx'
export const CADDY = '/usr/bin/caddy'
const GUIDE = new URL('../../docs/forward-auth.md', import.meta.url)

export interface ForwardAuthProxy {
  url: string
  port: number
  stop(): Promise<void>
}

export function proxyAvailable(kind: 'nginx' | 'caddy'): boolean {
  return existsSync(kind === 'nginx' ? NGINX : CADDY)
}

/** The fenced block after `<!-- snippet: NAME -->` in the guide, with the guide's ports (gateway 8080, API 9500, proxy 8000) replaced. */
async function snippet(name: string, ports: { gateway: number; api: number; proxy: number }): Promise<string> {
  const guide = await readFile(GUIDE, 'utf8')
  const found = new RegExp(`<!-- snippet: ${name} -->\\n\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(guide)
  if (!found) throw new Error(`docs/forward-auth.md has no snippet "${name}"`)
  return (found[1] as string)
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${ports.gateway}`)
    .replaceAll('127.0.0.1:9500', `127.0.0.1:${ports.api}`)
    .replaceAll(':8000', `:${ports.proxy}`)
}

/** `probePath`: a path the proxy answers once it listens (any status). */
export async function startForwardAuthProxy(kind: 'nginx' | 'caddy', dir: string, gatewayUrl: string, apiPort: number, probePath = '/'): Promise<ForwardAuthProxy> {
  const ports = { gateway: Number(new URL(gatewayUrl).port), api: apiPort, proxy: await closedPort() }
  const home = join(dir, kind)
  let started: Started
  if (kind === 'nginx') {
    await mkdir(join(home, 'logs'), { recursive: true })
    const conf = join(home, 'nginx.conf')
    await writeFile(conf, `daemon off;\nmaster_process off;\nworker_processes 1;\npid ${home}/nginx.pid;\nerror_log stderr warn;\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n  client_body_temp_path ${home}/client_body;\n  proxy_temp_path ${home}/proxy;\n  fastcgi_temp_path ${home}/fastcgi;\n  uwsgi_temp_path ${home}/uwsgi;\n  scgi_temp_path ${home}/scgi;\n${await snippet('nginx', ports)}\n}\n`)
    started = await startProcess(NGINX, ['-p', home, '-c', conf], null, { core: null })
  } else {
    await mkdir(home, { recursive: true })
    const file = join(home, 'Caddyfile')
    // No admin endpoint (its port is shared); HOME and the XDG dirs are the run's.
    await writeFile(file, `{\n\tadmin off\n\tauto_https off\n}\n\n${await snippet('caddy', ports)}`)
    const env = { HOME: home, XDG_DATA_HOME: join(home, 'data'), XDG_CONFIG_HOME: join(home, 'config') }
    started = await startProcess(CADDY, ['run', '--config', file, '--adapter', 'caddyfile'], null, { core: null, env })
  }
  const url = `http://127.0.0.1:${ports.proxy}`
  await waitFor(async () => {
    try {
      await (await request(`${url}${probePath}`)).body.dump()
      return true
    } catch {
      return false
    }
  }, `${kind} at ${url}\n${started.output()}`, 20_000)
  return { url, port: ports.proxy, stop: () => started.stop() }
}
