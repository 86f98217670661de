// Log lines queue for a stalled reader of stderr up to LOG_BUFFER_BYTES (16 MiB), then are dropped
// (adm3-log-reader-stalled): dropped lines were counted nowhere, so an operator could not tell a
// quiet gateway from one whose log lost lines. They are counted (bouncer_log_lines_dropped_total),
// and once the queue has been written out, one line says how many were lost.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { expect, it } from 'vitest'
import { waitForText } from '../helpers/wait.ts'
import { serveWithWorkers } from '../helpers/workers.ts'

const TELEMETRY = fileURLToPath(new URL('../../src/telemetry/index.ts', import.meta.url))

// A process whose logger writes 20 MiB of lines at once to a stderr nobody reads yet, then prints
// how many were dropped, as its metric says, and waits for a line on stdin to end.
const SCRIPT = `
import { createLogger, createMetrics } from ${JSON.stringify(TELEMETRY)}
const logger = createLogger({ level: 'info' })
const big = 'x'.repeat(64 * 1024)
for (let i = 0; i < 320; i++) logger.info({ i }, big)
const metrics = createMetrics({ audit: () => ({ queueDepth: 0, sinks: {}, written: 0, spilled: 0, replayed: 0, dropped: 0, quarantined: 0, spillBytes: 0 }), inFlight: () => 0 })
const { body } = await metrics.render()
console.log(body.split('\\n').find((line) => line.startsWith('bouncer_log_lines_dropped_total ')) ?? 'no series')
process.stdin.once('data', () => process.exit(0))
`

it('counts the lines dropped at the queue\'s bound, and says how many once writing resumes', async () => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] })
  try {
    child.stderr.pause() // nobody reads stderr until the count is printed
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    // Bounds far past the ~1 s this takes: the child loads the logger's modules and writes 20 MiB,
    // and on a loaded CI machine (three test files at once) that once took more than 8 s.
    await waitForText(() => stdout, /\n/, 30_000)
    const series = /^bouncer_log_lines_dropped_total (\d+)$/.exec(stdout.trim())
    expect(series, stdout).not.toBeNull()
    const dropped = Number(series?.[1])
    // 20 MiB written against a 16 MiB queue (and a pipe's 64 KiB): some 60 lines did not fit.
    expect(dropped).toBeGreaterThan(0)
    expect(dropped).toBeLessThan(320)
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.stderr.resume()
    await waitForText(() => stderr, '"dropped":', 30_000)
    const line = stderr.split('\n').find((l) => l.includes('"dropped":')) as string
    expect(JSON.parse(line)).toMatchObject({ level: 'warn', dropped, msg: `${dropped} log lines were dropped: stderr was not read while 16 MiB of lines waited` })
  } finally {
    child.stderr.resume() // its exit writes out what is queued
    child.stdin.end('\n')
    if (child.exitCode === null) await once(child, 'exit')
  }
}, 90_000)

it('with server.workers, /metrics has the series once (the primary\'s queue is the one that drops)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bouncer-fx2-log-dropped-'))
  const { gateway } = await serveWithWorkers(dir, () => ({ audit: { sinks: [{ type: 'sqlite', path: join(dir, 'audit.db') }] }, routes: [] }))
  try {
    const body = await (await request(`${gateway.adminUrl}/metrics`)).body.text()
    expect(body.split('\n').filter((line) => line.startsWith('bouncer_log_lines_dropped_total'))).toEqual(['bouncer_log_lines_dropped_total 0'])
  } finally {
    await gateway.stop('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  }
}, 20_000)
