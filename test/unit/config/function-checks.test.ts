// `bouncer check` on functions and the routes that target them: one target per route, names that
// exist, modules that can be loaded, and route settings that only an HTTP upstream can use.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runCheck } from '../../../src/cli/check.ts'
import { runCli } from '../../helpers/cli.ts'
import { formatDiagnostic, loadConfigText } from '../../../src/config/index.ts'

// The config "file" sits in the fixtures' folder, so ./echo.ts is the fixture.
const FILE = fileURLToPath(new URL('../../fixtures/functions/bouncer.yaml', import.meta.url))
const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/functions/${name}`, import.meta.url))

function check(text: string) {
  const loaded = loadConfigText(text, FILE, {})
  return { loaded, lines: loaded.diagnostics.map((d) => formatDiagnostic('bouncer.yaml', d)) }
}

const FUNCTIONS = 'upstreams:\n  - { name: api, url: http://127.0.0.1:9500 }\nfunctions:\n  - { name: echo, module: ./echo.ts }\n'

describe('function checks', () => {
  it('accepts a function route, resolves the module from the config file\'s folder, and fills in the defaults', () => {
    const { loaded, lines } = check(`${FUNCTIONS}routes:\n  - { id: r, path: /r, function: echo, public: true }\n`)
    expect(lines).toEqual([])
    expect(loaded.config?.functions).toEqual([{ name: 'echo', module: fixture('echo.ts'), handler: 'handler', timeout: 30_000, memory: 128, concurrency: 4, environment: {} }])
  })

  it('refuses a route with no target, or with two', () => {
    const { loaded, lines } = check(`${FUNCTIONS}routes:\n  - { id: none, path: /n, public: true }\n  - { id: both, path: /b, upstream: api, function: echo, public: true }\n`)
    expect(loaded.config).toBeUndefined()
    expect(lines).toEqual([
      'bouncer.yaml:6:5: routes[0]: route "none" has no target: give it one of upstream, function, dataset',
      'bouncer.yaml:7:5: routes[1]: route "both" has both upstream and function: give it exactly one target',
    ])
  })

  it('refuses an unknown function, a missing module, an unloadable file, duplicates and upstream-only settings', () => {
    const text =
      'upstreams:\n  - { name: "function:echo", url: http://127.0.0.1:9500 }\n' +
      'functions:\n  - { name: echo, module: ./echo.ts }\n  - { name: echo, module: ./nowhere.ts }\n  - { name: text, module: ./README.md }\n' +
      'routes:\n' +
      '  - { id: a, path: /a, function: nothing, public: true }\n' +
      '  - { id: b, path: /b/:x, function: echo, upstream_path: /x/:x, public: true }\n' +
      '  - { id: c, path: /c, function: echo, websocket: true, public: true }\n'
    const { loaded, lines } = check(text)
    expect(loaded.config).toBeUndefined()
    expect(lines).toEqual([
      'bouncer.yaml:2:13: upstreams[0].name: an upstream name cannot start with "function:": the audit log names a function route\'s target so',
      'bouncer.yaml:5:13: functions[1].name: duplicate function "echo"',
      `bouncer.yaml:5:27: functions[1].module: no such file: "${fixture('nowhere.ts')}"`,
      'bouncer.yaml:6:13: warning: functions[2].name: function "text" is not the target of any route',
      `bouncer.yaml:6:27: functions[2].module: a function module is a .js, .mjs, .cjs, .ts, .mts or .cts file: "${fixture('README.md')}"`,
      'bouncer.yaml:8:34: routes[0].function: unknown function "nothing"',
      'bouncer.yaml:9:58: routes[1].upstream_path: upstream_path rewrites the path sent to an upstream; a function gets the request path (rawPath) as it is',
      'bouncer.yaml:10:51: routes[2].websocket: a function answers requests, it cannot hold a WebSocket',
    ])
  })

  it('checks memory, timeout and concurrency', () => {
    const { lines } = check('functions:\n  - { name: f, module: ./echo.ts, memory: 8MB, timeout: 0s, concurrency: 0 }\nroutes:\n  - { id: r, path: /r, function: f, public: true }\n')
    expect(lines.join('\n')).toMatch(/memory: memory is 32MB to 16GB/)
    expect(lines.join('\n')).toMatch(/timeout: must be more than 0/)
    expect(lines.join('\n')).toMatch(/concurrency: /)
    expect(check('functions:\n  - { name: f, module: ./echo.ts, memory: lots }\n').lines.join('\n')).toMatch(/memory: invalid size "lots": write it like 128MB or 1GB/)
    expect(check('functions:\n  - { name: f, module: ./echo.ts, memory: 1GB }\nroutes:\n  - { id: r, path: /r, function: f, public: true }\n').loaded.config?.functions[0]?.memory).toBe(1024)
  })
})

// Found by an earlier probe, left open until now: `bouncer check` said ok for a module with a
// syntax error, and a start ran it, every call answering 502. The code is parsed, never run.
describe('bouncer check parses each function module without running it', () => {
  it('names what does not parse at the module\'s place: TypeScript, an ES module, types Node cannot strip; ok for the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-fn-parse-'))
    try {
      const ran = join(dir, 'ran')
      const modules: Record<string, string> = {
        'good.ts': `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(ran)}, 'top level ran')\nexport async function handler(event: { a?: string }) { return { ok: event.a } }\n`,
        'cut.ts': 'export async function handler( {\n',
        'commas.mjs': 'export const handler = async () => {\n  return { a: 1,, }\n}\n',
        'enum.ts': 'enum Kind { A }\nexport const handler = async () => Kind.A\n',
        'sloppy.js': 'module.exports.handler = async () => 1\nwith (Math) { void max }\n', // CommonJS: not strict, `with` parses
        'esm/strict.js': 'export const handler = async () => 1\nwith (Math) { void max }\n', // its package.json says module: strict
      }
      mkdirSync(join(dir, 'esm'))
      writeFileSync(join(dir, 'esm', 'package.json'), '{ "type": "module" }')
      for (const [name, code] of Object.entries(modules)) writeFileSync(join(dir, name), code)
      const names = Object.keys(modules)
      writeFileSync(join(dir, 'bouncer.yaml'), `functions:\n${names.map((name, i) => `  - { name: f${i}, module: ./${name} }\n`).join('')}routes:\n${names.map((_, i) => `  - { id: r${i}, path: /r${i}, function: f${i}, public: true }\n`).join('')}`)
      const result = await runCheck(join(dir, 'bouncer.yaml'), {})
      expect(result.ok).toBe(false)
      expect(result.findings.map((line) => line.slice(line.indexOf(': ') + 2))).toEqual([
        'functions[1].module: its code does not parse: SyntaxError: Unexpected token `<eof>`. Expected identifier, string literal, numeric literal or [ for the computed key',
        "functions[2].module: its code does not parse: SyntaxError: Unexpected token ','",
        'functions[3].module: its code does not parse: SyntaxError: TypeScript enum is not supported in strip-only mode',
        'functions[5].module: its code does not parse: SyntaxError: Strict mode code may not include a with statement',
      ])
      expect(existsSync(ran)).toBe(false) // parsed, not run
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  // Found by the review: a .js or .ts file was parsed as either kind whatever its package.json said,
  // so an ES module's syntax in a "type": "commonjs" package was ok, and the worker's import()
  // refused it (every call a 502).
  it('parses a .js or .ts file as the kind its package.json\'s "type" makes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-fn-type-'))
    try {
      const files: Record<string, string> = {
        'cjs/package.json': '{ "type": "commonjs" }',
        'cjs/esm.js': 'export const handler = async () => 1\n',
        'cjs/esm.ts': 'export const handler = async (): Promise<number> => 1\n',
        'cjs/cjs.js': 'module.exports.handler = async () => 1\n',
        'esm/package.json': '{ "type": "module" }',
        'esm/esm.js': 'export const handler = async () => 1\n',
      }
      mkdirSync(join(dir, 'cjs'))
      mkdirSync(join(dir, 'esm'))
      for (const [name, code] of Object.entries(files)) writeFileSync(join(dir, name), code)
      const names = Object.keys(files).filter((name) => !name.endsWith('package.json'))
      writeFileSync(join(dir, 'bouncer.yaml'), `functions:\n${names.map((name, i) => `  - { name: f${i}, module: ./${name} }\n`).join('')}routes:\n${names.map((_, i) => `  - { id: r${i}, path: /r${i}, function: f${i}, public: true }\n`).join('')}`)
      const result = await runCheck(join(dir, 'bouncer.yaml'), {})
      expect(result.findings.map((line) => line.slice(line.indexOf(': ') + 2))).toEqual([
        "functions[0].module: its code does not parse: SyntaxError: Unexpected token 'export' (line 1)",
        "functions[1].module: its code does not parse: SyntaxError: Unexpected token 'export' (line 1)",
      ])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  // Found by the review: Node strips no types from a file under node_modules, and the worker's
  // import() refused a .ts function module there that check had said ok to.
  // Found by the review: a preload of NODE_OPTIONS (an APM agent) that printed a line in the child
  // made check end in "internal error: … is not valid JSON", and a child that failed printed its
  // whole command, this file's script, as the internal error. Now the answer is the child's last
  // line, and a parse that could not run is a warning that says why.
  it('reads its answer through a preload\'s output, and a parse that cannot run is a warning, not an internal error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-fn-preload-'))
    try {
      writeFileSync(join(dir, 'cut.mjs'), 'export async function handler( {\n')
      writeFileSync(join(dir, 'bouncer.yaml'), 'functions:\n  - { name: f0, module: ./cut.mjs }\nroutes:\n  - { id: r0, path: /r0, function: f0, public: true }\n')
      // Only in the parse's child (its argument is the JSON list), not in bouncer itself.
      const inChild = 'if (process.argv.some((a) => a.startsWith("[[")))'
      writeFileSync(join(dir, 'banner.cjs'), `${inChild} process.stdout.write("agent started\\n")\n`)
      writeFileSync(join(dir, 'dies.cjs'), `${inChild} { process.stderr.write("agent: no licence\\n"); process.exit(3) }\n`)
      const check = (preload: string) => runCli(['check', '--config', join(dir, 'bouncer.yaml')], { env: { NODE_OPTIONS: `--require=${join(dir, preload)}` } })
      const printed = await check('banner.cjs')
      expect(printed.code, printed.stderr).toBe(1)
      expect(printed.stderr).toContain('functions[0].module: its code does not parse: SyntaxError')
      const died = await check('dies.cjs')
      expect(died.stderr).toMatch(/^\S+:\d+:\d+: warning: functions: the modules' code was not parsed: its Node ended with 3: agent: no licence\n$/)
      expect({ code: died.code, stdout: died.stdout }).toEqual({ code: 0, stdout: 'ok (1 warning)\n' })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('names a TypeScript module under node_modules: Node strips no types there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bouncer-fn-nm-'))
    try {
      mkdirSync(join(dir, 'node_modules', 'handlers'), { recursive: true })
      writeFileSync(join(dir, 'node_modules', 'handlers', 'h.ts'), 'export const handler = async (): Promise<number> => 1\n')
      writeFileSync(join(dir, 'node_modules', 'handlers', 'h.js'), 'export const handler = async () => 1\n')
      writeFileSync(join(dir, 'bouncer.yaml'), 'functions:\n  - { name: f0, module: ./node_modules/handlers/h.ts }\n  - { name: f1, module: ./node_modules/handlers/h.js }\nroutes:\n  - { id: r0, path: /r0, function: f0, public: true }\n  - { id: r1, path: /r1, function: f1, public: true }\n')
      const result = await runCheck(join(dir, 'bouncer.yaml'), {})
      expect(result.findings.map((line) => line.slice(line.indexOf(': ') + 2))).toEqual([
        "functions[0].module: its code does not parse: TypeScript under node_modules, where Node strips no types (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING): use the package's JavaScript",
      ])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
