// The fuzz targets with a short budget (FUZZ_RUNS inputs each, 200 unless set), and every
// regression example they keep. `npm run fuzz` runs the same properties for a million inputs.
import { describe, it } from 'vitest'
import { describeCounterexample } from './lib.ts'
import { FUZZ_TARGETS, shortRuns } from './properties.ts'

describe('fuzz targets (short budget)', () => {
  for (const target of FUZZ_TARGETS) {
    it(`${target.name}: ${shortRuns(target)} inputs`, async () => {
      const details = await target.check({ numRuns: shortRuns(target) })
      if (details.failed) throw new Error(`${describeCounterexample(details)}\nreplay: npm run fuzz -- --target ${target.name} --seed=${details.seed} --path=${details.counterexamplePath}`)
    })
  }
})
