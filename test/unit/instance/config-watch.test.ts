import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, unwatchFile, watchFile, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { GatewayState } from '../../../src/gateway/index.ts'
import { watchConfigFile } from '../../../src/instance/config-watch.ts'

const state = { runtime: { config: { server: { watch_config: true } } }, logger: { info() {} } } as unknown as GatewayState
const timing = { pollMs: 100, settleMs: 20 } // a poll longer than the settle, as in the gateway (1 s, 200 ms)

describe('watchConfigFile', () => {
  // CI on 9211471: a poll between `writeFile`'s truncate and its data saw two changes a poll apart,
  // and the gateway reloaded twice for one edit.
  it('reloads once for a write a poll saw half done', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'config-watch-')), 'bouncer.yaml')
    writeFileSync(file, 'routes: []\n')
    let reloads = 0
    const watch = watchConfigFile(file, state, () => reloads++, timing)
    // Node shares one poller among a file's listeners: this one runs in the same poll as the
    // gateway's, just after it, so the data lands after a poll saw the file truncated.
    const sawTruncated = new Promise<void>((resolve) => {
      watchFile(file, { interval: timing.pollMs, persistent: false }, function finishWrite(now) {
        if (now.size !== 0) return
        unwatchFile(file, finishWrite)
        writeFileSync(fd, 'routes: [] # edited\n')
        closeSync(fd)
        resolve()
      })
    })
    await new Promise((resolve) => setTimeout(resolve, 5 * timing.pollMs)) // the watcher's first stat, which a write before it would become
    const fd = openSync(file, 'w') // truncated: what a poll may see of a writeFile in progress
    try {
      await sawTruncated
      await expect.poll(() => reloads, { timeout: 5_000 }).toBe(1)
      // The polls after the write see it changed from the truncated file: nothing to wait on but
      // time for a second reload that must not come.
      await new Promise((resolve) => setTimeout(resolve, 10 * timing.pollMs + 2 * timing.settleMs))
      expect(reloads).toBe(1)
    } finally {
      watch.stop()
    }
  })

  it('reloads again for a second edit', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'config-watch-')), 'bouncer.yaml')
    writeFileSync(file, 'routes: []\n')
    let reloads = 0
    const watch = watchConfigFile(file, state, () => reloads++, timing)
    try {
      await new Promise((resolve) => setTimeout(resolve, 5 * timing.pollMs)) // the watcher's first stat, which a write before it would become
      writeFileSync(file, 'routes: [] # one\n')
      await expect.poll(() => reloads, { timeout: 5_000 }).toBe(1)
      writeFileSync(file, 'routes: [] # and two\n')
      await expect.poll(() => reloads, { timeout: 5_000 }).toBe(2)
    } finally {
      watch.stop()
    }
  })
})

describe('watchConfigFile and a file it cannot stat', () => {
  // Found by review: the settle timer stats the file again; a directory on its path made unreadable
  // (EACCES) or a symlink loop (ELOOP) threw in the timer, which ends the gateway.
  it('reloads (and lets the reload say why) instead of throwing in its timer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-watch-'))
    const file = join(dir, 'conf', 'bouncer.yaml')
    mkdirSync(join(dir, 'conf'))
    writeFileSync(file, 'routes: []\n')
    let reloads = 0
    const watch = watchConfigFile(file, state, () => reloads++, timing)
    try {
      await new Promise((resolve) => setTimeout(resolve, 3 * timing.pollMs)) // the watcher's first stat
      // On the poll that saw the edit, just after the gateway's listener: within its settle.
      watchFile(file, { interval: timing.pollMs, persistent: false }, function breakPath(now) {
        if (now.size === 0) return
        unwatchFile(file, breakPath)
        rmSync(join(dir, 'conf'), { recursive: true })
        symlinkSync('conf', join(dir, 'conf')) // a stat of conf/bouncer.yaml: ELOOP (EACCES is not to be had as root)
      })
      writeFileSync(file, 'routes: [] # edited\n')
      await expect.poll(() => reloads, { timeout: 5_000 }).toBe(1)
    } finally {
      watch.stop()
    }
  })
})
