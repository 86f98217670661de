// npm run fuzz [-- --target NAME[,NAME…]] [--runs N] [--seed=S] [--path=P]
//
// The long budget: every target of properties.ts for its share of (at least) a million inputs,
// one after the other. Per target it prints the inputs run, inputs per second, and any
// counterexample with the seed and path that replay it:
//   npm run fuzz -- --target paths.canonical --seed=-123 --path=4:1:0
// `--runs N` gives every selected target N inputs instead of its share. Exit 1 on a counterexample.
import { parseArgs } from 'node:util'
import { describeCounterexample } from './lib.ts'
import { FUZZ_TARGETS } from './properties.ts'

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    runs: { type: 'string' },
    seed: { type: 'string' },
    path: { type: 'string' },
  },
})

const wanted = values.target?.split(',').map((name) => name.trim())
const unknown = wanted?.filter((name) => !FUZZ_TARGETS.some((t) => t.name === name)) ?? []
if (unknown.length > 0) {
  console.error(`unknown target ${unknown.join(', ')}; targets: ${FUZZ_TARGETS.map((t) => t.name).join(', ')}`)
  process.exit(2)
}
if (values.path !== undefined && values.seed === undefined) {
  console.error('--path replays a counterexample: give its --seed too')
  process.exit(2)
}
const targets = FUZZ_TARGETS.filter((t) => !wanted || wanted.includes(t.name))
const seed = values.seed === undefined ? undefined : Number(values.seed)

const rows: Array<{ name: string; runs: number; seconds: number; failed: boolean }> = []
for (const target of targets) {
  const numRuns = values.runs !== undefined ? Number(values.runs) : target.longRuns
  const started = performance.now()
  const details = await target.check({ numRuns, seed, path: values.path })
  const seconds = (performance.now() - started) / 1000
  // numRuns counts up to the failure when one was found (shrinking not included).
  rows.push({ name: target.name, runs: details.numRuns, seconds, failed: details.failed })
  const rate = Math.round(details.numRuns / seconds)
  console.log(`${target.name.padEnd(22)} ${String(details.numRuns).padStart(9)} inputs  ${String(rate).padStart(7)} inputs/s  ${seconds.toFixed(1).padStart(7)} s  ${details.failed ? 'COUNTEREXAMPLE' : 'ok'}`)
  if (details.failed) {
    console.log(describeCounterexample(details))
    console.log(`  replay: npm run fuzz -- --target ${target.name} --seed=${details.seed} --path=${details.counterexamplePath}\n`)
  }
}

const total = rows.reduce((sum, r) => sum + r.runs, 0)
const seconds = rows.reduce((sum, r) => sum + r.seconds, 0)
const failed = rows.filter((r) => r.failed)
console.log(`\n${total} inputs over ${rows.length} targets in ${seconds.toFixed(0)} s (${Math.round(total / seconds)} inputs/s); ${failed.length === 0 ? 'no counterexample' : `counterexamples in ${failed.map((r) => r.name).join(', ')}`}`)
process.exitCode = failed.length === 0 ? 0 : 1
