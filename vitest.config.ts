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
    restoreMocks: true,
  },
})
