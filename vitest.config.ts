import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

// V8's compiled code for every module, kept on disk across the test processes and the gateways and
// CLI commands the tests start (inherited through the environment): each would compile the same
// sources again (importing the gateway: 0.80 s → 0.46 s with the cache warm, 2026-12-05).
process.env.NODE_COMPILE_CACHE ??= fileURLToPath(new URL('./node_modules/.cache/node-compile', import.meta.url))

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests bind real sockets and share PostgreSQL/Redis; files run in parallel
    // processes but each file owns its ports (port 0) and its own schema/key prefix.
    pool: 'forks',
    fileParallelism: true,
    // Three files at a time whatever the core count (vitest's default is cores − 1: one on the 2-core
    // CI machine). The files wait on real servers more than they compute: the suite took 606 s of
    // wall time with two, 879–901 s with one, on the 2-core machine (2026-12-02). Three were no
    // faster then (902 s against two's 871 s, 2026-12-05), while `bouncer` commands ran as child
    // processes; run in the test process (test/helpers/cli-in-process.ts) they left the two cores
    // 76% busy with two files, and three took CI's suite from 1,156 s to 957 s (clean clones of
    // 9c091e1 with two and with three, 2026-12-07). Four, on a slower 2-core machine where three took
    // 1,196 s (9% of the two cores idle): 1,018-1,028 s, but each run failed two or three other
    // timing-bound tests (five in all, each passing alone; three runs, 2026-12-07): kept at three.
    maxWorkers: 3,
    restoreMocks: true,
    // The gateway's sources and the test helpers are loaded by Node itself (type stripping), as
    // production runs them, not through Vite's module runner: each integration file is a fresh
    // process that imports most of src/, and the runner's transform and RPC made importing it most
    // of a small file's time (the suite's import time 324 s, 2026-12-05). No test mocks a module
    // (vi.spyOn on console and process.stdout only), which is what the runner would be needed for.
    server: { deps: { external: [/\/src\//, /\/test\/helpers\//] } },
    projects: [
      {
        extends: true,
        // Unit files share their worker processes: a fresh process per file spent more on starting
        // Node and importing the modules than on the tests (test/unit alone, 109 files: 349 s wall
        // and 67 s of CPU isolated, against 122 s and 23 s shared, on a loaded 2-core host,
        // 2026-12-05). They set no process-wide state a later file could read (mocks are restored).
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], isolate: false },
      },
      {
        extends: true,
        // Integration files share their worker processes too. Each file closes what it starts
        // (gateways, workers, signal handlers, servers) in its own hooks, and binds port 0 and its own
        // schema or key prefix; a fresh process per file spent ~2 s starting Node and importing the
        // gateway, most of the 130 small files' time: the whole suite took 1,025 s isolated and 768 s
        // shared, all 2,425 tests passing, on a quiet 2-core machine (2026-12-05).
        test: { name: 'integration', include: ['test/integration/**/*.test.ts', 'test/fuzz/**/*.test.ts'], isolate: false },
      },
    ],
  },
})
