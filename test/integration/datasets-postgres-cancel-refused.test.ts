// A PostgreSQL dataset query abandoned mid-read (the client went) is cancelled in the server on a
// new connection. When the server refused that connection (restarting, failing over: when clients
// give up on slow streams), pg raised an unhandled 'error' on it, which ended the gateway (its
// uncaughtException handler drains and exits). Run in a child, which reports what it caught.
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { runCli } from '../helpers/cli.ts'

const FIXTURE = fileURLToPath(new URL('../fixtures/dataset-cancel-refused.ts', import.meta.url))

it('a cancel the server refuses is no uncaught exception; the abandoned read ends with its connection', async () => {
  const { code, stdout, stderr } = await runCli([], { bin: FIXTURE, nodeArgs: ['--no-deprecation'] })
  expect(code, stderr).toBe(0)
  const outcome = JSON.parse(stdout) as { uncaught: string | null; read: string }
  expect(outcome.uncaught).toBeNull()
  expect(outcome.read).toMatch(/Datasource "shop" failed/)
}, 30_000)

it('a cancel the server takes and never answers is given up after its connect bound, not kept for ever', async () => {
  const { code, stdout, stderr } = await runCli(['hold'], { bin: FIXTURE, nodeArgs: ['--no-deprecation'] })
  expect(code, stderr).toBe(0)
  const outcome = JSON.parse(stdout) as { uncaught: string | null; heldMs: number | null }
  expect(outcome.uncaught).toBeNull()
  // CANCEL_CONNECT_MS is 5 s; without it the connection stayed open until TCP gave up.
  expect(outcome.heldMs, 'the canceller kept its connection for 12 s').not.toBeNull()
  expect(outcome.heldMs).toBeGreaterThanOrEqual(4_500)
  expect(outcome.heldMs).toBeLessThan(12_000)
}, 30_000)
