// SIGHUP asks `serve` to reload. Node's default for it ends the process, and loading the modules
// takes a second or more before `serve` can listen for it: bin/bouncer.js remembers one until then.

interface EarlyHangup {
  asked(): boolean
  release(): void
}

/** Whether a SIGHUP came while the modules loaded; bin/bouncer.js stops listening for it from here on. */
export function takeEarlyHangup(): boolean {
  const early = (globalThis as Record<symbol, EarlyHangup | undefined>)[Symbol.for('bouncer.earlyHangup')]
  if (!early) return false
  early.release()
  return early.asked()
}
