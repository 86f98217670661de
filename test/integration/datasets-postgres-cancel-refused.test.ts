// A PostgreSQL dataset query abandoned mid-read (the client went) is cancelled in the server on a
// new connection. When the server refused that connection (restarting, failing over: when clients
// give up on slow streams), pg raised an unhandled 'error' on it, which ended the gateway (its
// uncaughtException handler drains and exits). Run in a child, which reports what it caught.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const FIXTURE = fileURLToPath(new URL('../fixtures/dataset-cancel-refused.ts', import.meta.url))

it('a cancel the server refuses is no uncaught exception; the abandoned read ends with its connection', async () => {
  const child = spawn(process.execPath, ['--no-deprecation', FIXTURE], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  expect(code, stderr).toBe(0)
  const outcome = JSON.parse(stdout) as { uncaught: string | null; read: string }
  expect(outcome.uncaught).toBeNull()
  expect(outcome.read).toMatch(/Datasource "shop" failed/)
}, 30_000)
