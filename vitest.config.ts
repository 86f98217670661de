import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests bind real sockets and share PostgreSQL/Redis; files run in parallel
    // processes but each file owns its ports (port 0) and its own schema/key prefix.
    pool: 'forks',
    fileParallelism: true,
    // Two files at a time whatever the core count (vitest's default is cores − 1: one on the 2-core
    // CI machine). The files wait on real servers more than they compute: the suite took 606 s of
    // wall time with two, 879–901 s with one, on the 2-core machine (2026-12-02).
    maxWorkers: 2,
    restoreMocks: true,
  },
})
