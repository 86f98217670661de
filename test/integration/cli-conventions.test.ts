// What users expect of any command line (SPEC "Command line, added"): --version, results on stdout
// and everything else on stderr, exit 2 for a usage error, and one way to find the config file for
// every command: --config, else $BOUNCER_CONFIG, else ./bouncer.yaml, else /etc/bouncer/bouncer.yaml.
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { chmod, chown, mkdir, mkdtemp, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { DatabaseSync } from 'node:sqlite'
import { Worker } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { openSessionStore } from '../../src/identity/index.ts'
import { runCli, serveConfig } from '../helpers/cli.ts'

const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
/** A config that names its own file in the error `bouncer` prints: which file was read is then plain. */
const INVALID = 'server:\n  listen: nowhere\n'
const NO_CONFIG_ENV = { BOUNCER_CONFIG: '' }

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bouncer-cli-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The file a command read, from its first error line (`FILE:LINE:COL: …`). */
function fileRead(stderr: string): string | undefined {
  return /^(.+?):2:11: server\.listen: invalid listen address/m.exec(stderr)?.[1]
}

describe('bouncer --version', () => {
  it('prints bouncer X.Y.Z (node vN) from package.json and exits 0', async () => {
    for (const flag of ['--version', '-v']) {
      expect(await runCli([flag])).toEqual({ code: 0, stdout: `bouncer ${PACKAGE.version} (node ${process.version})\n`, stderr: '' })
    }
  })
})

describe('the compile cache', () => {
  const uid = process.getuid?.() ?? 0
  const cacheIn = (temp: string) => join(temp, `bouncer-compile-cache-${uid}`)
  const env = (temp: string) => ({ TMPDIR: temp, NODE_COMPILE_CACHE: '' })

  it("keeps the modules' compiled code in a folder of the temp folder only this account can change, and not when NODE_DISABLE_COMPILE_CACHE is set", async () => {
    const temp = join(dir, 'temp')
    await mkdir(temp)
    expect((await runCli(['--version'], { env: { ...env(temp), NODE_DISABLE_COMPILE_CACHE: '1' } })).code).toBe(0)
    expect(existsSync(cacheIn(temp))).toBe(false)
    expect((await runCli(['--version'], { env: env(temp) })).code).toBe(0)
    expect((await stat(cacheIn(temp))).mode & 0o777).toBe(0o700)
    expect((await readdir(cacheIn(temp))).length).toBe(1) // Node's folder for this version
  })

  // Found by a review: Node's default folder (the temp folder's node-compile-cache) was used as
  // found; one another account made first (mode 777) let it replace the cached code that the next
  // command (`bouncer keys`, run as root) would run.
  it('leaves the cache off in a folder another account can change: nothing is read or written there', async () => {
    const temp = join(dir, 'shared-temp')
    await mkdir(temp)
    await chmod(temp, 0o1777) // as /tmp is
    const planted = [cacheIn(temp), join(temp, 'node-compile-cache')] // ours, and Node's default
    for (const folder of planted) {
      await mkdir(folder)
      await chmod(folder, 0o777)
      if (uid === 0) await chown(folder, 65534, 65534) // made by nobody
    }
    const result = await runCli(['--version'], { env: env(temp) })
    expect(result.code).toBe(0)
    for (const folder of planted) expect(await readdir(folder)).toEqual([])
  })

  // What deploy/kubernetes counts on: its pods' /tmp is an emptyDir (777, not sticky), where the
  // default folder is refused, so the Deployment names one in NODE_COMPILE_CACHE.
  it('takes NODE_COMPILE_CACHE as given, in a temp folder where its own default is refused (a pod\'s emptyDir)', async () => {
    const temp = join(dir, 'empty-dir')
    await mkdir(temp)
    await chmod(temp, 0o777)
    expect((await runCli(['--version'], { env: env(temp) })).code).toBe(0)
    expect(await readdir(temp)).toEqual([])
    const cache = join(temp, 'bouncer-compile-cache')
    expect((await runCli(['--version'], { env: { ...env(temp), NODE_COMPILE_CACHE: cache } })).code).toBe(0)
    expect((await readdir(cache)).length).toBe(1) // Node's folder for this version
  })

  // Found by the review: only a parent others could write through its group or other bits counted
  // as shared, so a TMPDIR owned by another account (`su` keeps the user's, e.g. /run/user/1000,
  // mode 700) took root's cache: that account may rename the folder away and put its own code in
  // its place while the command loads. So may the owner of a sticky folder. Only root can make one.
  it.skipIf(uid !== 0)("leaves the cache off in a temp folder another account owns, private or sticky", async () => {
    for (const [name, mode] of [['others-private', 0o755], ['others-sticky', 0o1777]] as const) {
      const temp = join(dir, name)
      await mkdir(temp)
      await chown(temp, 65534, 65534)
      await chmod(temp, mode)
      expect((await runCli(['--version'], { env: env(temp) })).code).toBe(0)
      expect(await readdir(temp)).toEqual([])
    }
  })
})

describe('usage errors', () => {
  it.each([
    [['frobnicate']],
    [['check', '--bogus']],
    [['explain', '--path', '/x']],
    [['audit', '--decision', 'maybe', '--config', '/nonexistent.yaml']],
    [['serve', '--port', 'eighty', '--config', '/nonexistent.yaml']],
    [['check', '--config', '']],
  ])('%j exits 2, says why on stderr and prints nothing on stdout', async (args) => {
    const result = await runCli(args)
    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).not.toBe('')
  })
})

describe('finding the config', () => {
  it('takes --config, then $BOUNCER_CONFIG, then ./bouncer.yaml, then /etc/bouncer/bouncer.yaml', async () => {
    const cwd = join(dir, 'order')
    await mkdir(cwd)
    const flagged = join(cwd, 'flag.yaml')
    const fromEnv = join(cwd, 'env.yaml')
    for (const file of [flagged, fromEnv, join(cwd, 'bouncer.yaml')]) await writeFile(file, INVALID)

    const check = (args: string[], env: NodeJS.ProcessEnv) => runCli(['check', ...args], { cwd, env })
    expect(fileRead((await check(['--config', flagged], { BOUNCER_CONFIG: fromEnv })).stderr)).toBe(flagged)
    expect(fileRead((await check([], { BOUNCER_CONFIG: fromEnv })).stderr)).toBe(fromEnv)
    expect(fileRead((await check([], NO_CONFIG_ENV)).stderr)).toBe('./bouncer.yaml')

    // The last place: the real /etc/bouncer/bouncer.yaml, made for this test when the machine has none.
    const etcDir = '/etc/bouncer'
    const etcFile = join(etcDir, 'bouncer.yaml')
    if (existsSync(etcFile)) return // a real installation's file: not ours to replace
    const madeDir = !existsSync(etcDir)
    await mkdir(etcDir, { recursive: true })
    await writeFile(etcFile, INVALID)
    try {
      expect(fileRead((await check([], NO_CONFIG_ENV)).stderr)).toBe('./bouncer.yaml') // still second to ./bouncer.yaml
      await rm(join(cwd, 'bouncer.yaml'))
      expect(fileRead((await check([], NO_CONFIG_ENV)).stderr)).toBe(etcFile)
    } finally {
      await rm(etcFile, { force: true })
      if (madeDir) await rmdir(etcDir)
    }
    const none = await check([], NO_CONFIG_ENV)
    expect(none).toMatchObject({ code: 1, stdout: '' })
    expect(none.stderr).toBe('bouncer: no config file: give --config PATH, set BOUNCER_CONFIG, or create ./bouncer.yaml or /etc/bouncer/bouncer.yaml\n')
  })

  it.each([
    [['check']],
    [['serve', '--port', '0', '--admin-port', '0']],
    [['explain', '--method', 'GET', '--path', '/x', '--claims', '{}']],
    [['audit']],
    [['audit', 'verify']],
    [['secrets', 'list']],
  ])('%j finds ./bouncer.yaml the same way, and reports an invalid one on stderr with exit 1', async (args) => {
    const cwd = await mkdtemp(join(dir, 'each-'))
    await writeFile(join(cwd, 'bouncer.yaml'), INVALID)
    const result = await runCli(args, { cwd, env: NO_CONFIG_ENV })
    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
    expect(fileRead(result.stderr)).toBe('./bouncer.yaml')
  })
})

// Found by an adversarial probe: a store file the command cannot use was "bouncer: internal error:
// …", the gateway's bug by its words. A SQLite file with an api_keys or sessions table of another
// shape (another program's, an old copy) passed the schema and failed at a statement ("no such
// column: id"); a store this account may only read was "is not an API key store: attempt to write
// a readonly database", which sends the operator to look for the wrong file.
describe('a store the command cannot use', () => {
  const STORES = `api_keys: { store: { type: sqlite, path: ./keys.db } }
issuers:
  - { name: idp, issuer: https://idp.example.com/, audiences: [x], jwks_uri: https://idp.example.com/jwks }
sign_in:
  issuer: idp
  client_id: c
  client_secret: s
  session: { store: { type: sqlite, path: ./sessions.db } }
`

  it('a SQLite file with a table of that name and another shape: one line naming the file, exit 1', async () => {
    const cwd = await mkdtemp(join(dir, 'other-shape-'))
    for (const [file, table] of [['keys.db', 'api_keys'], ['sessions.db', 'sessions']] as const) {
      const db = new DatabaseSync(join(cwd, file))
      db.exec(`CREATE TABLE ${table} (x)`)
      db.close()
    }
    await writeFile(join(cwd, 'bouncer.yaml'), STORES)
    const keys = `bouncer: ${join(cwd, 'keys.db')} is not an API key store: no such column: id\n`
    const sessions = `bouncer: ${join(cwd, 'sessions.db')} is not a session store: no such column: issuer\n`
    expect(await runCli(['keys', 'list'], { cwd, env: NO_CONFIG_ENV })).toEqual({ code: 1, stdout: '', stderr: keys })
    expect(await runCli(['sessions', 'list', '--json'], { cwd, env: NO_CONFIG_ENV })).toEqual({ code: 1, stdout: '', stderr: sessions })
  })

  // ioredis gives up with "Reached the max retries per request limit", which says nothing of why:
  // the connection's own error is said beside it.
  it('a Redis session store that refuses the connection: one line with the connection\'s error, exit 1', async () => {
    const cwd = await mkdtemp(join(dir, 'redis-down-'))
    await writeFile(join(cwd, 'bouncer.yaml'), STORES.replace('{ type: sqlite, path: ./sessions.db }', '{ type: redis, url: "redis://127.0.0.1:1" }'))
    const listed = await runCli(['sessions', 'list'], { cwd, env: NO_CONFIG_ENV })
    expect(listed).toMatchObject({ code: 1, stdout: '' })
    expect(listed.stderr).toMatch(/^bouncer: the session store \(Redis 127\.0\.0\.1:1\) failed: .*\(the connection: connect ECONNREFUSED 127\.0\.0\.1:1\)\n$/)
  })

  // Only root can run the command as another account (nobody) on files root made.
  it.skipIf(process.getuid?.() !== 0 || !existsSync('/usr/bin/setpriv'))('a store this account may only read: "cannot open" it, with SQLite\'s reason, exit 1; the audit log is read as it stands', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'bouncer-cli-read-only-'))
    await chmod(cwd, 0o755) // mkdtemp's 700 would hide the config from nobody
    onTestFinished(() => rm(cwd, { recursive: true, force: true }))
    await writeFile(join(cwd, 'bouncer.yaml'), `${STORES}audit: { sinks: [{ type: sqlite, path: ./audit.db }] }\n`)
    expect((await runCli(['keys', 'create', '--principal', 'a'], { cwd, env: NO_CONFIG_ENV })).code).toBe(0) // made by root
    // `sessions list` makes no store (adm4): root makes it as a gateway would.
    await openSessionStore({ store: { type: 'sqlite', path: join(cwd, 'sessions.db') }, idle: 60_000 } as Parameters<typeof openSessionStore>[0], null).close()
    const asNobody = (args: string[]) => runCli(args, { cwd, env: { ...NO_CONFIG_ENV, HOME: cwd }, as: { uid: 65534, gid: 65534 } })
    expect(await asNobody(['keys', 'list'])).toEqual({ code: 1, stdout: '', stderr: `bouncer: cannot open the API key store ${join(cwd, 'keys.db')}: attempt to write a readonly database\n` })
    expect(await asNobody(['sessions', 'list'])).toEqual({ code: 1, stdout: '', stderr: `bouncer: cannot open the session store ${join(cwd, 'sessions.db')}: attempt to write a readonly database\n` })
    // It was "(damaged, or not an audit log?)", then "cannot read the audit log": the log is read as it stands, and said so.
    const audit = join(cwd, 'audit.db')
    const read = await asNobody(['audit', '--json'])
    expect(read).toMatchObject({
      code: 0,
      stderr: `warning: read the audit log ${audit} as it stands, without SQLite's locks and its -wal and -shm files (this user may not write its folder ${cwd}, where SQLite would make them): records still in ${audit}-wal, not yet checkpointed into the log, are not read\n`,
    })
    expect(read.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { method: string }).method)).toEqual(['CLI'])
  })
})

// Found by the operations probe: on Node 22 every command printed "ExperimentalWarning: SQLite is
// an experimental feature and might change at any time" to stderr (and serve once more for each
// thread that loads node:sqlite). Node 24 prints none, so the commands' own tests cannot show it:
// a Node 22 binary is taken from BOUNCER_TEST_NODE22 (e.g. npm's node@22 package), else skipped.
describe("Node 22's warning about node:sqlite", () => {
  const node22 = (() => {
    const path = process.env.BOUNCER_TEST_NODE22
    if (!path || !existsSync(path)) return undefined
    return execFileSync(path, ['--version'], { encoding: 'utf8' }).startsWith('v22.') ? path : undefined
  })()

  it.skipIf(!node22)('is not printed by a command or by serve and its threads on Node 22', async () => {
    const version = await runCli(['--version'], { node: node22 })
    expect(version).toMatchObject({ code: 0, stderr: '' })
    const cwd = await mkdtemp(join(dir, 'node22-'))
    await writeFile(join(cwd, 'bouncer.yaml'), 'api_keys: { store: { type: sqlite, path: ./keys.db } }\n')
    expect(await runCli(['keys', 'list'], { cwd, env: NO_CONFIG_ENV, node: node22 })).toEqual({ code: 0, stdout: 'no API keys\n', stderr: '' })
    // The audit thread and two request threads load node:sqlite too.
    const gateway = await serveConfig((served) => ({ server: { listen: '127.0.0.1:0', workers: 2 }, audit: { sinks: [{ type: 'sqlite', path: join(served, 'audit.db') }], spill_dir: join(served, 'spill') } }), { node: node22 })
    expect(await gateway.stop('SIGTERM')).toBe(0)
    expect(gateway.stderr()).not.toContain('ExperimentalWarning')
  }, 60_000)

  // Any Node: bin/bouncer.js's filter of the main thread, with the threads' predicate. A preload
  // catches the filter as bin installs it and warns through it, as Node 22 does when node:sqlite loads.
  it("drops only that warning in a command's main thread: the command's other warnings are printed", async () => {
    const preload = join(dir, 'warn-through-bin-filter.mjs')
    await writeFile(preload, `const original = process.emitWarning
let installed
Object.defineProperty(process, 'emitWarning', {
  configurable: true,
  get: () => installed ?? original,
  set(filter) {
    installed = filter
    queueMicrotask(() => {
      process.emitWarning('SQLite is an experimental feature and might change at any time', 'ExperimentalWarning')
      process.emitWarning(Object.assign(new Error('SQLite is an experimental feature and might change at any time'), { name: 'ExperimentalWarning' }))
      process.emitWarning('Something else is an experimental feature', 'ExperimentalWarning')
      process.emitWarning('a deprecated thing', { type: 'DeprecationWarning' })
    })
  },
})
`)
    const result = await runCli(['--version'], { nodeArgs: ['--import', pathToFileURL(preload).href] })
    expect(result.code).toBe(0)
    expect(result.stderr).not.toContain('SQLite')
    expect(result.stderr).toContain('ExperimentalWarning: Something else is an experimental feature')
    expect(result.stderr).toContain('DeprecationWarning: a deprecated thing')
  })

  // Any Node: the threads' filter lets every other warning through, experimental or not.
  it("drops only that warning in a thread: the thread's other warnings are printed", async () => {
    const collections = new URL('../../src/collections/index.ts', import.meta.url).href
    const worker = new Worker(`import(${JSON.stringify(collections)}).then(({ quietSqliteWarning }) => {
      quietSqliteWarning()
      process.emitWarning('SQLite is an experimental feature and might change at any time', 'ExperimentalWarning')
      process.emitWarning('Something else is an experimental feature', 'ExperimentalWarning')
      process.emitWarning('a deprecated thing', 'DeprecationWarning')
    })`, { eval: true, stderr: true })
    let stderr = ''
    worker.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    await once(worker, 'exit')
    expect(stderr).not.toContain('SQLite')
    expect(stderr).toContain('ExperimentalWarning: Something else is an experimental feature')
    expect(stderr).toContain('DeprecationWarning: a deprecated thing')
  })
})
