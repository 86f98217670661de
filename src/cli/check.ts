import type { Command } from 'commander'
import { formatDiagnostic, loadConfigFile, resolveConfigPath } from '../config/index.ts'
import { loadSecrets } from '../secrets/index.ts'

export interface CheckResult {
  ok: boolean
  lines: string[]
}

export async function runCheck(configFile: string, env: NodeJS.ProcessEnv = process.env): Promise<CheckResult> {
  const loaded = await loadConfigFile(configFile, env)
  const diagnostics = [...loaded.diagnostics]
  if (loaded.config) {
    // Secrets are checked where they are kept: the store must open and hold every reference.
    const secrets = loadSecrets(loaded, env)
    secrets.store?.close()
    diagnostics.push(...secrets.diagnostics)
  }
  const lines = diagnostics.map((d) => formatDiagnostic(loaded.file, d))
  const errors = diagnostics.filter((d) => d.severity === 'error').length
  const warnings = diagnostics.length - errors
  if (errors === 0) lines.push(warnings === 0 ? 'ok' : `ok (${warnings} warning${warnings === 1 ? '' : 's'})`)
  return { ok: errors === 0, lines }
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('validate the config without starting anything (exit 1 with PATH:LINE:COL lines when invalid)')
    .option('--config <path>', 'config file (default: $BOUNCER_CONFIG or ./bouncer.yaml)')
    .action(async (opts: { config?: string }) => {
      const result = await runCheck(resolveConfigPath(opts.config))
      for (const line of result.lines) console.log(line)
      process.exitCode = result.ok ? 0 : 1
    })
}
