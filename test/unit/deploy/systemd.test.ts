// The systemd unit (deploy/bouncer.service), checked without systemd running: its hardening, its
// stop timeout against the drain of the config it is documented with (examples/production), the
// state it may write, and, where systemd-analyze is installed, that systemd reads every line of it.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { loadConfigText } from '../../../src/config/index.ts'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const UNIT_PATH = `${ROOT}deploy/bouncer.service`
const UNIT = readFileSync(UNIT_PATH, 'utf8')

/** The [Service] section's settings, each key's values in order. */
function serviceSection(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>()
  let section = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header) {
      section = header[1] as string
      continue
    }
    if (section !== 'Service') continue
    const eq = line.indexOf('=')
    const key = line.slice(0, eq)
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)])
  }
  return settings
}

const service = serviceSection(UNIT)
const one = (key: string) => service.get(key)?.at(-1)
const systemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0

describe('deploy/bouncer.service', () => {
  // Found by an adversarial probe: `systemd-analyze security` listed protections the gateway does not
  // need to be without, and files it made (the audit log, which names every caller) were readable
  // by every account on the host (umask 022).
  it('runs unprivileged and hardened, its files private to it', () => {
    expect(one('User')).toBe('bouncer')
    for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectControlGroups',
      'ProtectClock', 'ProtectKernelLogs', 'ProtectHostname', 'RestrictSUIDSGID', 'RestrictRealtime', 'RestrictNamespaces', 'LockPersonality', 'RemoveIPC', 'PrivateMounts']) {
      expect(one(key), key).toBe('yes')
    }
    expect(one('ProtectSystem')).toBe('strict')
    expect(one('CapabilityBoundingSet')).toBe('')
    expect(one('AmbientCapabilities')).toBe('')
    expect(one('UMask')).toBe('0077')
    expect(one('StateDirectoryMode')).toBe('0700')
    expect(service.has('MemoryDenyWriteExecute'), 'V8 compiles to machine code').toBe(false)
  })

  // With the default RLIMIT_NICE of 0 the audit worker could not return from nice +5 (and now does
  // not yield at all: src/audit/worker-priority.ts); +0 lets it come back to 0 and no higher.
  it('lets the audit worker take back the priority it yields', () => {
    expect(one('LimitNICE')).toBe('+0')
  })

  it('drains before systemd kills it, and writes only in its state directory', () => {
    const loaded = loadConfigText(readFileSync(`${ROOT}examples/production/bouncer.yaml`, 'utf8'), '/etc/bouncer/bouncer.yaml', {})
    const config = loaded.config!
    expect(one('KillSignal')).toBe('SIGTERM')
    expect(Number(one('TimeoutStopSec')) * 1000).toBeGreaterThan(config.server.shutdown_timeout)
    expect(one('Restart')).toBe('on-failure')
    expect(config.audit.spill_dir.startsWith(`/var/lib/${one('StateDirectory')}/`)).toBe(true)
  })

  it.runIf(systemdAnalyze)('is read by systemd without a warning (systemd-analyze verify)', () => {
    const verify = spawnSync('systemd-analyze', ['verify', UNIT_PATH], { encoding: 'utf8' })
    expect({ status: verify.status, stderr: verify.stderr }).toEqual({ status: 0, stderr: '' })
  })
})
