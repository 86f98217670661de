// A private redis-server on a free loopback port, for tests that stop and restart it (stopping
// the machine's shared Redis on 6379 would break the other test files running in parallel).
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { closedPort } from './faults.ts'

export interface TestRedis {
  url: string
  port: number
  stop(): Promise<void>
  start(): Promise<void>
}

export async function startRedis(): Promise<TestRedis> {
  const port = await closedPort()
  let child: ChildProcess | undefined
  async function start(): Promise<void> {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' })
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {}) // refused while the server is still starting
    for (let i = 0; i < 100; i++) {
      try {
        await client.connect()
        await client.ping()
        client.disconnect()
        return
      } catch {
        client.disconnect()
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    throw new Error('redis-server did not start')
  }
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    async stop() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return // already gone (a killed child has a signalCode, no exitCode)
      child.kill('SIGKILL') // as abrupt as a crash
      await once(child, 'exit')
    },
  }
}

/** A key prefix no other test uses, for tests on the shared Redis at 127.0.0.1:6379. */
export function uniquePrefix(name: string): string {
  return `bouncer-test:${name}:${process.pid}:${Date.now()}:`
}
