// The config a gateway starts with, checked once by whoever read it and handed to startGateway,
// which would otherwise read and check it again (once per start; ~1 s at 10,000 routes).
import type { Config, LoadedConfig } from '../config/index.ts'
import { ConfigError, diagnosticLines } from './prepare.ts'

/**
 * The checked config, and the loaded file for one taker: startGateway, which would otherwise read
 * and check it again (once per start; ~1 s at 10,000 routes). Nothing else keeps the file (its YAML
 * document) once taken (startup-garbage.ts).
 */
export function handover(file: LoadedConfig): { config: Config; take(): LoadedConfig | null } {
  if (!file.config) throw new ConfigError(diagnosticLines(file, 'error'))
  let held: LoadedConfig | null = file
  return {
    config: file.config,
    take() {
      const taken = held
      held = null
      return taken
    },
  }
}
