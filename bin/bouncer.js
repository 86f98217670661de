#!/usr/bin/env node
// Runs the TypeScript sources in a checkout (Node's type stripping: no build step while developing),
// and the compiled build (npm run build: dist/) everywhere else: installed as a package (Node does
// not strip types inside node_modules), in the container image (which ships dist/ and no sources),
// and on a Node that cannot strip types (or is told not to: --no-experimental-strip-types).
import { existsSync, lstatSync, mkdirSync, realpathSync, statSync } from 'node:fs'
import module from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

// The lowest Node.js the gateway runs on (package.json's engines; node:sqlite without a flag, type
// stripping). npm only warns about engines, and a distribution's own /usr/bin/node (Debian 12's is
// 18, the systemd unit's ExecStart) is often older: say so in one line rather than let the build
// end in a stack trace about a missing built-in module.
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`bouncer: Node.js ${process.version} is too old. Use Node.js 22.18 or later (24 recommended).`)
  process.exit(1)
}

// V8 pretenures allocation sites whose objects survived during startup (config loading); under
// load those sites then allocate per-request objects straight into the old generation, where
// they die young but hold young objects alive: scavenges of 5-15 ms and a heap three times the
// size. Without it the GC pauses stay under 3 ms (bench/README.md, "Profiling").
setFlagsFromString('--no-allocation-site-pretenuring')

// After each full GC V8 lets the old generation grow to up to 4x what survived before the next one;
// under load a gateway's old generation is mostly promoted garbage, so that headroom is resident
// memory for nothing. At 50% (set here: NODE_OPTIONS refuses the flag), the full pipeline under
// load held 199-217 MB against 264-283 MB, at the same CPU per request (4 alternating rounds;
// 35% and smaller semi-spaces cost CPU: bench/README.md, "Profiling").
setFlagsFromString('--heap-growing-percent=50')

// NODE_OPTIONS=--max-semi-space-size=16 (deploy/, the Dockerfile) has sized this thread's young
// generation by now. Left set, V8 would apply it to every worker thread too, over the young
// generation each is started with (the audit worker's 8 MB, a function's slice of its `memory`):
// cleared, each gets its own, and request-path workers the same as this thread
// (src/instance/workers/young-generation.ts). The audit worker then held 8 MB instead of 16-32.
setFlagsFromString('--max-semi-space-size=0')

// One memory-reducing collection before `serve` listens gives back what loading the config used
// (src/instance/startup-garbage.ts). V8 gives JavaScript its collector only behind --expose-gc: set
// here, while this is the only thread, for one vm context, then unset, so no other context (a
// function's worker) gets a global gc. An operator's own --expose-gc is left as it is.
if (typeof globalThis.gc === 'function') {
  globalThis[Symbol.for('bouncer.startupCollector')] = globalThis.gc
} else {
  try {
    setFlagsFromString('--expose-gc')
    globalThis[Symbol.for('bouncer.startupCollector')] = runInNewContext('gc')
  } catch {
    // a runtime without it: the start's garbage stays committed, nothing else changes
  } finally {
    setFlagsFromString('--no-expose-gc')
  }
}

// SIGHUP asks `serve` to reload; Node's default ends the process, and `serve` listens for it only
// once the modules have loaded (a second or more). One that comes before is remembered: serve
// reloads once it runs, and any other command gets it as Node would (src/cli/early-hangup.ts).
let hangup = false
const rememberHangup = () => {
  hangup = true
}
process.on('SIGHUP', rememberHangup)
globalThis[Symbol.for('bouncer.earlyHangup')] = { asked: () => hangup, release: () => process.off('SIGHUP', rememberHangup) }

const installed = fileURLToPath(import.meta.url).includes('/node_modules/')
const sources = new URL('../src/cli/main.ts', import.meta.url)
const built = new URL('../dist/cli/main.js', import.meta.url)
const useSources = !installed && process.features.typescript && existsSync(sources)
if (!useSources && !existsSync(built)) {
  console.error(
    existsSync(sources)
      ? `bouncer: Node.js ${process.version} cannot run TypeScript sources here. Use Node.js 22.18 or later, run it ` +
          'through npm (npm start, npx bouncer …), which uses the Node 24 this project pins, or build it first (npm run build).'
      : 'bouncer: neither the sources (src/) nor the build (dist/) is here: run npm run build.',
  )
  process.exit(1)
}
// Node's on-disk compile cache: a command's start compiles ~300 modules, and with their code cached
// it takes about half the CPU (`bouncer --version`: 1.0 -> 0.5 s user, measured). V8 runs what the
// cache holds, so it is kept only in a folder this account alone can change: Node's default, the
// shared temp folder's node-compile-cache, was used as found, and a folder another account made
// there first (mode 777) let that account swap in the code of the next `bouncer keys` run as root.
// NODE_COMPILE_CACHE (the operator's own folder) is taken as given; NODE_DISABLE_COMPILE_CACHE=1
// turns it off; a folder that cannot be made, or is not private, leaves it off.
const compileCache = process.env.NODE_COMPILE_CACHE || process.env.NODE_DISABLE_COMPILE_CACHE ? undefined : privateCacheFolder(`bouncer-compile-cache-${process.getuid?.() ?? 'user'}`)
if (process.env.NODE_COMPILE_CACHE || compileCache) module.enableCompileCache?.(compileCache)
// Node 22 prints "ExperimentalWarning: SQLite is an experimental feature and might change at any
// time" once node:sqlite loads, which every command does (the stores, the audit log): a line on
// stderr of each `bouncer --version` or `bouncer keys list`, about nothing the operator can act on
// (Node 24, which the project pins, prints none). Only that warning is dropped; every other one,
// experimental or not, is printed as before. Which warning it is, is the threads' own predicate
// (src/collections/sqlite-warning.ts): that module imports nothing, so loading it alone, from the
// tree main comes from, adds one small file to the start, and node:sqlite is not loaded yet.
const { isSqliteWarning } = await import(new URL(useSources ? '../src/collections/sqlite-warning.ts' : '../dist/collections/sqlite-warning.js', import.meta.url).href)
const emitWarning = process.emitWarning
process.emitWarning = function emitWarningButSqlite(warning, ...rest) {
  const name = warning instanceof Error ? warning.name : typeof rest[0] === 'string' ? rest[0] : (rest[0]?.type ?? 'Warning')
  const message = warning instanceof Error ? warning.message : warning
  if (typeof message === 'string' && isSqliteWarning({ name, message })) return
  return emitWarning.call(this, warning, ...rest)
}
const { main } = await import((useSources ? sources : built).href)
await main(process.argv)

/**
 * The folder `name` in the temp folder (its real path: a link on the way could be pointed
 * elsewhere), made if missing (mode 700), when it is a folder (not a link) this account owns that no
 * other can write, and no other account can write a folder above it (which would let it rename the
 * cache away and put its own in its place between this check and Node's reads): each is owned by
 * this account or root, and group and others cannot write it unless it is sticky (as /tmp is). Else
 * undefined. On a system without uids (Windows) the temp folder is the user's own.
 */
function privateCacheFolder(name) {
  const uid = process.getuid?.()
  try {
    const temp = realpathSync(tmpdir())
    // A TMPDIR of another account's (`su` keeps it) is written by that account even at mode 700,
    // and the owner of a sticky folder may still rename what is in it.
    for (let above = temp; uid !== undefined; above = dirname(above)) {
      const held = statSync(above)
      if (held.uid !== uid && held.uid !== 0) return undefined
      if ((held.mode & 0o022) !== 0 && (held.mode & 0o1000) === 0) return undefined
      if (dirname(above) === above) break
    }
    const folder = join(temp, name)
    try {
      mkdirSync(folder, { mode: 0o700 })
    } catch (err) {
      if (err.code !== 'EEXIST') return undefined
    }
    if (uid === undefined) return folder
    const own = lstatSync(folder)
    return own.isDirectory() && own.uid === uid && (own.mode & 0o022) === 0 ? folder : undefined
  } catch {
    return undefined
  }
}
