// The gateway's log on stderr that can no longer be written (a file on a full disk: ENOSPC; a
// terminal hung up: EIO). pino handles only EPIPE from its destination and emits any other write
// error again, with no listener: the first line after the disk filled ended the gateway as an
// uncaught exception (its handler drains and stops it). Now the lines stay queued (bounded, then
// dropped and counted) and the process goes on, and ends by itself.
import { closeSync, openSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { expect, it } from 'vitest'

const FIXTURE = fileURLToPath(new URL('../fixtures/log-to-full-disk.ts', import.meta.url))

it('a log write refused by a full disk is no uncaught exception, and the process still ends', async () => {
  const full = openSync('/dev/full', 'w')
  try {
    const child = spawn(process.execPath, [FIXTURE], { stdio: ['ignore', 'pipe', full] })
    let stdout = ''
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    const [code, signal] = (await once(child, 'close')) as [number | null, string | null]
    clearTimeout(timer)
    expect(signal).toBeNull() // not killed: it ended by itself
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toEqual({ uncaught: null, writeError: 'ENOSPC' })
  } finally {
    closeSync(full)
  }
}, 30_000)
