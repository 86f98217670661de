// `npm run bench`'s options: the warm-up is 5 s (1 in quick mode), or what --warmup says in whole
// seconds (wrk's durations are whole seconds); 0 runs no warm-up.
import { describe, expect, it } from 'vitest'
import { parseOptions, UsageError } from '../../../bench/run.ts'

describe('--warmup', () => {
  it('defaults to 5 s, 1 s in quick mode, and takes 0 for none', () => {
    expect(parseOptions([]).warmupSec).toBe(5)
    expect(parseOptions(['--quick']).warmupSec).toBe(1)
    expect(parseOptions(['--quick', '--warmup', '0']).warmupSec).toBe(0)
    expect(parseOptions(['--warmup', '3']).warmupSec).toBe(3)
  })

  it('refuses what wrk cannot run: a fraction, a negative number, a word', () => {
    for (const value of ['0.5', '-1', 'none']) expect(() => parseOptions([`--warmup=${value}`]), value).toThrow(UsageError)
  })
})
