// A real `bouncer serve` with server.workers, and requests each on a connection of its own, so that
// the kernel spreads them over the workers: what the workers-* tests ask of one gateway.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Agent, request, type Dispatcher } from 'undici'
import { stringify } from 'yaml'
import { startServe, type ServeProcess } from './cli.ts'
import { heldPort } from './faults.ts'

/**
 * `bouncer serve` on `config(port)` written to `dir`, with `workers` (2) on that port, an admin
 * listener on any port and no audit sinks unless the config says otherwise. `config` gets the port
 * before it listens: a provider's redirect URI names it.
 */
export async function serveWithWorkers(dir: string, config: (port: number) => Record<string, unknown> | Promise<Record<string, unknown>>, options: { workers?: number; env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {}): Promise<{ gateway: ServeProcess; file: string }> {
  const held = await heldPort()
  const file = join(dir, 'bouncer.yaml')
  const written = await config(held.port)
  await writeFile(file, stringify({
    admin: { listen: '127.0.0.1:0' },
    audit: { sinks: [], spill_dir: join(dir, 'spill') },
    ...written,
    server: { listen: `127.0.0.1:${held.port}`, workers: options.workers ?? 2, ...(written.server as object | undefined) },
  }))
  await held.release()
  return { gateway: await startServe(['--config', file], { env: options.env, nodeArgs: options.nodeArgs, startTimeout: 90_000 }), file }
}

/** One request on a connection of its own (closed after it): the kernel picks a worker for each. */
export async function onNewConnection(url: string, options: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const agent = new Agent()
  try {
    const res = await request(url, { dispatcher: agent, method: options.method ?? 'GET', headers: { connection: 'close', ...options.headers }, body: options.body })
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
  } finally {
    await agent.close()
  }
}
