// Every fuzz target, in one list: `npm test` runs each with a short budget (fuzz.test.ts), and
// `npm run fuzz` with the long one (run.ts).
import type { FuzzTarget } from './lib.ts'
import { cidrs, durations, globs, hostPatterns, largeValues, listens, rates, routePatterns } from './targets/values.ts'
import { editedExamples, largeConfigs, mutatedConfigs, yamlTexts } from './targets/config.ts'
import { foldedNames, inspectedHeaders, largeHeaders } from './targets/headers.ts'
import { canonicalPaths, largePaths, routerMatches } from './targets/paths.ts'
import { arbitraryTokens, largeTokens, mutatedTokens } from './targets/tokens.ts'

export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  canonicalPaths, largePaths, routerMatches,
  inspectedHeaders, foldedNames, largeHeaders,
  mutatedTokens, arbitraryTokens, largeTokens,
  durations, rates, cidrs, globs, listens, hostPatterns, routePatterns, largeValues,
  yamlTexts, editedExamples, mutatedConfigs, largeConfigs,
]

/** `npm test`'s budget: FUZZ_RUNS inputs per target (200 unless set), fewer for 64 KB inputs. */
export function shortRuns(target: FuzzTarget, env: NodeJS.ProcessEnv = process.env): number {
  const runs = Number(env.FUZZ_RUNS ?? 200)
  return Math.max(3, Math.round((Number.isFinite(runs) && runs > 0 ? runs : 200) * target.shortScale))
}
