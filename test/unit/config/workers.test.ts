// server.workers: auto or a whole number (SPEC "Front door"); each wrong value has a clear error.
import { describe, expect, it } from 'vitest'
import { formatDiagnostic, loadConfigText, workerCount, type Config } from '../../../src/config/index.ts'
import { workersFindings } from '../../../src/config/workers-checks.ts'

function load(workers: string) {
  const loaded = loadConfigText(`server:\n  workers: ${workers}\n`, 'bouncer.yaml', {})
  return { config: loaded.config, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

describe('server.workers', () => {
  it('defaults to 1 (one process, as before), and takes auto or a number', () => {
    expect(loadConfigText('{}', 'bouncer.yaml', {}).config?.server.workers).toBe(1)
    expect(load('auto').config?.server.workers).toBe('auto')
    expect(load('4').config?.server.workers).toBe(4)
    expect(workerCount({ workers: 'auto' }, 8)).toBe(8)
    expect(workerCount({ workers: 3 }, 8)).toBe(3)
  })

  it.each(['0', '-1', '1.5', '257', 'many', '"2"', 'true'])('refuses %s', (value) => {
    const { config, lines } = load(value)
    expect(config).toBeUndefined()
    expect(lines).toEqual(['bouncer.yaml:2:12: server.workers: workers is auto (one per core) or a whole number from 1 to 256'])
  })

  it('warns of more workers than cores, and refuses more than one where SO_REUSEPORT is missing', () => {
    const config = load('4').config as Config
    expect(workersFindings(config, 'linux', 2)).toEqual([
      { severity: 'warning', path: ['server', 'workers'], message: '4 workers on a host with 2 cores take turns on them (auto is one per core)' },
    ])
    expect(workersFindings(config, 'linux', 4)).toEqual([])
    expect(workersFindings(config, 'darwin', 4)).toEqual([
      { severity: 'error', path: ['server', 'workers'], message: '4 workers share the port by SO_REUSEPORT, which Node offers on Linux and FreeBSD, not on darwin: set server.workers to 1' },
    ])
    expect(workersFindings(load('1').config as Config, 'darwin', 4)).toEqual([])
    expect(workersFindings(load('auto').config as Config, 'linux', 64)).toEqual([])
  })

  it('server.worker_stall_timeout: 30s by default, at least 1s', () => {
    expect(loadConfigText('{}', 'bouncer.yaml', {}).config?.server.worker_stall_timeout).toBe(30_000)
    expect(loadConfigText('server:\n  worker_stall_timeout: 2s\n', 'bouncer.yaml', {}).config?.server.worker_stall_timeout).toBe(2_000)
    const refused = loadConfigText('server:\n  worker_stall_timeout: 500ms\n', 'bouncer.yaml', {})
    expect(refused.config).toBeUndefined()
    expect(refused.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d))).toEqual([expect.stringContaining('server.worker_stall_timeout: at least 1s')])
  })
})
