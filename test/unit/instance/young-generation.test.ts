// A request-path worker thread gets the primary's young generation: read from the flag the process
// was started with, on its command line or in NODE_OPTIONS (bin/bouncer.js clears the flag itself).
import { expect, it } from 'vitest'
import { requestWorkerLimits, startSemiSpaceMb } from '../../../src/instance/workers/young-generation.ts'

it('reads --max-semi-space-size from NODE_OPTIONS and the command line, either spelling, the command line winning', () => {
  expect(startSemiSpaceMb([], '--max-semi-space-size=16')).toBe(16)
  expect(startSemiSpaceMb([], '"--max-semi-space-size=16" --trace-gc')).toBe(16)
  expect(startSemiSpaceMb([], '--trace-gc --max_semi_space_size=8 --inspect')).toBe(8)
  expect(startSemiSpaceMb(['--max-semi-space-size', '4'], '')).toBe(4)
  expect(startSemiSpaceMb(['--max-semi-space-size=32'], '--max-semi-space-size=16')).toBe(32)
  expect(startSemiSpaceMb(['--max-old-space-size=512'], '')).toBeUndefined()
  expect(startSemiSpaceMb(['--max-semi-space-size=0', '--max-semi-space-size=x'], undefined)).toBeUndefined()
})

it('gives a request-path worker three semi-spaces of young generation, or leaves V8 its default', () => {
  expect(requestWorkerLimits([], '--max-semi-space-size=16')).toEqual({ maxYoungGenerationSizeMb: 48 })
  expect(requestWorkerLimits([], '')).toBeUndefined()
})
