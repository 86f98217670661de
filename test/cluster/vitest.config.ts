import { defineConfig } from 'vitest/config'

// `npm run test:cluster`: the fault suite, one file at a time (each starts a whole cluster), kept
// out of `npm test` (its files are *.cluster.ts, which the main config does not match).
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.cluster.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
    sequence: { concurrent: false },
    restoreMocks: true,
  },
})
