// The audit worker yields to the request thread only while it keeps up (worker-priority.ts): a
// late batch puts it back at full priority until batches arrive fresh, a drain does for good. The
// nice values are those of a real thread of this process (Linux), read back from /proc.
import { execFileSync } from 'node:child_process'
import { readFileSync, readlinkSync } from 'node:fs'
import { getPriority } from 'node:os'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { CAUGHT_UP_MS, FALLEN_BEHIND_MS, mayRaiseTo, workerPriority, YIELD_NICE, type SetNice } from '../../../src/audit/worker-priority.ts'

/** Records the offsets asked for; `refuse` makes the setter fail (no permission, no /proc). */
function recorder(refuse = false): { setNice: SetNice; asked: number[] } {
  const asked: number[] = []
  return { asked, setNice: (offset) => (asked.push(offset), !refuse) }
}

describe('the audit worker priority', () => {
  it('yields from the start, takes full priority once a batch arrives late, and yields again when they arrive fresh', () => {
    const { setNice, asked } = recorder()
    const priority = workerPriority(setNice)
    expect(priority.yielding).toBe(true)
    priority.observeLag(FALLEN_BEHIND_MS - 1)
    expect(priority.yielding).toBe(true)
    priority.observeLag(FALLEN_BEHIND_MS)
    expect(priority.yielding).toBe(false)
    priority.observeLag(CAUGHT_UP_MS + 1) // between the two: still catching up
    expect(priority.yielding).toBe(false)
    priority.observeLag(CAUGHT_UP_MS)
    expect(priority.yielding).toBe(true)
    expect(asked).toEqual([YIELD_NICE, 0, YIELD_NICE])
  })

  it('stays at full priority after a drain, whatever the lag', () => {
    const { setNice, asked } = recorder()
    const priority = workerPriority(setNice)
    priority.restore()
    priority.observeLag(0)
    expect(priority.yielding).toBe(false)
    expect(asked).toEqual([YIELD_NICE, 0])
  })

  it('without a way to set it (sync durability, not Linux) or when refused, never claims to yield', () => {
    expect(workerPriority(null).yielding).toBe(false)
    const refused = workerPriority(recorder(true).setNice)
    refused.observeLag(0)
    expect(refused.yielding).toBe(false)
  })

  // Where it may come back (root here; an unprivileged run does not yield: below).
  it.runIf(process.platform === 'linux' && mayRaiseTo(getPriority()))('sets the nice value of its own thread only', async () => {
    const script = `
      const { parentPort } = require('node:worker_threads')
      import(${JSON.stringify(new URL('../../../src/audit/worker-priority.ts', import.meta.url).href)}).then((m) => {
        const priority = m.workerPriority(m.ownThreadNice())
        const tid = require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()
        parentPort.postMessage({ tid, yielding: priority.yielding })
        // on, not once: a listener kept holds the thread up until terminate, so its /proc entry is
        // there to read after its answer (with once it could exit first: ENOENT in CI).
        parentPort.on('message', (lag) => { priority.observeLag(lag); parentPort.postMessage(priority.yielding) })
      })`
    const niceOf = (tid: string) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]?.split(' ')[16])
    const ownTid = readlinkSync('/proc/thread-self').split('/').pop() as string
    const before = niceOf(ownTid)
    const worker = new Worker(script, { eval: true })
    try {
      const next = () => new Promise<unknown>((resolve) => worker.once('message', resolve))
      const { tid, yielding } = (await next()) as { tid: string; yielding: boolean }
      expect(yielding).toBe(true)
      expect(niceOf(tid)).toBe(Math.min(19, before + YIELD_NICE))
      expect(niceOf(ownTid)).toBe(before)
      worker.postMessage(FALLEN_BEHIND_MS)
      expect(await next()).toBe(false)
      expect(niceOf(tid)).toBe(before)
    } finally {
      await worker.terminate()
    }
  })

  // Found by an adversarial probe: every deployment runs the gateway unprivileged (the systemd
  // unit's User=bouncer, the image's USER node), where Linux lets a thread lower its priority but
  // not raise it back (no CAP_SYS_NICE, RLIMIT_NICE 0). The worker yielded, fell behind, asked for
  // full priority, was refused, and stayed at nice +5 while records piled up.
  it.runIf(process.platform === 'linux')('run unprivileged, is never left yielding once a batch arrives late', () => {
    const script = `
      import(${JSON.stringify(new URL('../../../src/audit/worker-priority.ts', import.meta.url).href)}).then((m) => {
        const os = require('node:os')
        const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop())
        const before = os.getPriority(tid)
        const priority = m.workerPriority(m.ownThreadNice())
        priority.observeLag(${FALLEN_BEHIND_MS})
        console.log(JSON.stringify({ uid: process.getuid(), before, after: os.getPriority(tid), yielding: priority.yielding }))
      })`
    // As root, as `nobody` (setuid drops every capability); otherwise as this unprivileged user.
    const asRoot = process.getuid?.() === 0
    const [command, args] = asRoot
      ? ['setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e', script]]
      : [process.execPath, ['-e', script]]
    const out = JSON.parse(execFileSync(command as string, args as string[], { encoding: 'utf8' })) as { uid: number; before: number; after: number; yielding: boolean }
    if (asRoot) expect(out.uid).toBe(65534)
    expect(out).toMatchObject({ after: out.before, yielding: false })
  })

  it('knows when the way back is open: CAP_SYS_NICE, or RLIMIT_NICE down to the nice value', () => {
    const limits = (soft: string) => `Limit                     Soft Limit           Hard Limit           Units\nMax nice priority         ${soft}                    ${soft}                    \n`
    const noCaps = 'Name:\tnode\nCapEff:\t0000000000000000\n'
    const sysNice = `Name:\tnode\nCapEff:\t${(1n << 23n).toString(16).padStart(16, '0')}\n`
    expect(mayRaiseTo(0, { status: noCaps, limits: limits('0') })).toBe(false)
    expect(mayRaiseTo(0, { status: sysNice, limits: limits('0') })).toBe(true)
    expect(mayRaiseTo(0, { status: noCaps, limits: limits('20') })).toBe(true) // LimitNICE=+0
    expect(mayRaiseTo(-1, { status: noCaps, limits: limits('20') })).toBe(false)
    expect(mayRaiseTo(0, { status: noCaps, limits: limits('unlimited') })).toBe(true)
    expect(mayRaiseTo(0, null)).toBe(false)
  })
})
