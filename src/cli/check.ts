import { existsSync } from 'node:fs'
import type { Command } from 'commander'
import { formatDiagnostic, loadConfigFile } from '../config/index.ts'
import { moduleSyntaxProblems, ModulesNotParsed } from '../functions/index.ts'
import { loadSecrets } from '../secrets/index.ts'
import { configOption, findConfig } from './config.ts'

export interface CheckResult {
  ok: boolean
  /** One line per problem (errors and warnings), for stderr. */
  findings: string[]
  /** `ok`, or `ok (N warnings)`, when there is no error: for stdout. */
  verdict: string | null
}

export async function runCheck(configFile: string, env: NodeJS.ProcessEnv = process.env): Promise<CheckResult> {
  const loaded = await loadConfigFile(configFile, env)
  const diagnostics = [...loaded.diagnostics]
  if (loaded.config) {
    // Secrets are checked where they are kept: the store must open and hold every reference (one
    // that is not there is not made: check writes nothing).
    const secrets = loadSecrets(loaded, env, { existing: true })
    secrets.store?.close()
    diagnostics.push(...secrets.diagnostics)
    // A module's code is parsed, never run (functions/syntax-check.ts); one that is missing has its error already.
    const modules = loaded.config.functions.map((fn, i) => ({ path: fn.module, at: ['functions', i, 'module'] as const }))
    const unparsed = await moduleSyntaxProblems(modules.map((m) => m.path).filter((path) => existsSync(path))).catch((err: unknown) => {
      // The parse is check's own look ahead: one that could not run says so, and the rest stands.
      if (!(err instanceof ModulesNotParsed)) throw err
      diagnostics.push(loaded.locate({ severity: 'warning', path: ['functions'], message: `the modules' code was not parsed: ${err.message}` }))
      return new Map<string, string>()
    })
    for (const { path, at } of modules) {
      const problem = unparsed.get(path)
      if (problem !== undefined) diagnostics.push(loaded.locate({ severity: 'error', path: [...at], message: `its code does not parse: ${problem}` }))
    }
  }
  const findings = diagnostics.map((d) => formatDiagnostic(loaded.file, d))
  const errors = diagnostics.filter((d) => d.severity === 'error').length
  const warnings = diagnostics.length - errors
  const verdict = errors > 0 ? null : warnings === 0 ? 'ok' : `ok (${warnings} warning${warnings === 1 ? '' : 's'})`
  return { ok: errors === 0, findings, verdict }
}

export function registerCheck(program: Command): void {
  configOption(program
    .command('check')
    .description('validate the config without starting anything (exit 1 with PATH:LINE:COL lines when invalid)'))
    .action(async (opts: { config?: string }) => {
      const result = await runCheck(findConfig(opts.config))
      // Findings on stderr, the verdict on stdout (SPEC "Command line, added").
      for (const line of result.findings) console.error(line)
      if (result.verdict) console.log(result.verdict)
      process.exitCode = result.ok ? 0 : 1
    })
}
