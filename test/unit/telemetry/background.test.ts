// The background task helper: whatever a task does wrong, the failure is logged with its stack and
// counted on the real Prometheus registry, and nothing escapes to end the process.
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { BACKGROUND_TASKS, createBackgroundTasks } from '../../../src/telemetry/background.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import { createMetrics, type AuditGauges } from '../../../src/telemetry/metrics.ts'

const noAudit: AuditGauges = { queueDepth: 0, written: 0, spilled: 0, replayed: 0, dropped: 0, quarantined: 0, spillBytes: 0, sinks: {} }

function setup(destination?: Writable) {
  const lines: Array<Record<string, unknown>> = []
  const logger = createLogger({
    level: 'debug',
    destination: destination ?? new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }),
  })
  const metrics = createMetrics({ audit: () => noAudit, inFlight: () => 0 })
  const background = createBackgroundTasks(logger, metrics)
  const count = async (task: string) => {
    const line = (await metrics.render()).body.split('\n').find((l) => l.startsWith(`bouncer_background_failures_total{task="${task}"} `))
    return line === undefined ? undefined : Number(line.split(' ')[1])
  }
  return { lines, background, count }
}

describe('background tasks', () => {
  it('every task has its series from the start, at 0', async () => {
    const { count } = setup()
    for (const task of Object.keys(BACKGROUND_TASKS)) expect(await count(task)).toBe(0)
  })

  it('a task that throws synchronously or rejects is logged with its stack and counted; run() resolves', async () => {
    const { lines, background, count } = setup()
    await expect(background.run('secrets_refresh', () => {
      throw new TypeError('a bug in a refresh')
    })).resolves.toBeUndefined()
    await expect(background.run('runtime_retirement', async () => {
      throw new Error('a pool that would not close')
    })).resolves.toBeUndefined()
    expect(await count('secrets_refresh')).toBe(1)
    expect(await count('runtime_retirement')).toBe(1)
    expect(lines).toEqual([
      expect.objectContaining({ level: 'error', task: 'secrets_refresh', msg: 'background task secrets_refresh failed: the values in use stay until the next refresh', err: expect.objectContaining({ type: 'TypeError', stack: expect.stringMatching(/^TypeError: a bug in a refresh\n\s+at /) }) }),
      expect.objectContaining({ level: 'error', task: 'runtime_retirement', err: expect.objectContaining({ message: 'a pool that would not close' }) }),
    ])
  })

  it('a task that succeeds is not counted', async () => {
    const { lines, background, count } = setup()
    await background.run('reload', async () => ({ ok: true }))
    expect(await count('reload')).toBe(0)
    expect(lines).toEqual([])
  })

  it('failed() takes the task own message and fields, and any rejection reason', async () => {
    const { lines, background, count } = setup()
    background.failed('issuer_keys', 'not even an Error', { message: 'issuer keys unavailable: retrying', fields: { issuer: 'corp' } })
    expect(await count('issuer_keys')).toBe(1)
    expect(lines).toEqual([expect.objectContaining({ msg: 'issuer keys unavailable: retrying', issuer: 'corp', task: 'issuer_keys', err: { message: 'not even an Error' } })])
  })

  it('a failure is still counted when the log cannot be written, and nothing is thrown', async () => {
    const broken = new Writable({ write: () => { throw new Error('the log destination is gone') } })
    const { background, count } = setup(broken)
    await expect(background.run('audit_worker', () => {
      throw new Error('the worker failed')
    })).resolves.toBeUndefined()
    expect(await count('audit_worker')).toBe(1)
  })
})
