// The parts of undici the gateway uses, required from their own files rather than through the
// package's index: `import 'undici'` loads ~110 modules (fetch, WebSocket, EventSource, cookies,
// caches, mocks), and its cookies module reads `globalThis.Headers`, which loads Node's own bundled
// undici as well: ~100-200 ms of CPU at every start that imports the upstreams (serve, each of its
// worker threads, `check`, `explain`, `secrets`), 2026-12-07. undici's package.json has no
// `exports` map, so its files are its public paths; test/unit/undici-parts.test.ts checks each is
// the same object the index exports, so an undici that moves one fails there, not in production.
import { createRequire } from 'node:module'
import type * as Undici from 'undici'

const require = createRequire(import.meta.url)

// What the index does besides exporting: it gives every dispatcher its request, stream, pipeline,
// upgrade and connect methods (the health checks' `client.request`). Without it they were missing
// in `serve`, where nothing else loads the index (the tests' own processes load it, so only the
// gateway in its own process showed it: test/unit/undici-parts.test.ts now runs one).
Object.assign((require('undici/lib/dispatcher/dispatcher.js') as { prototype: object }).prototype, require('undici/lib/api/index.js'))

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool
export type Pool = Undici.Pool
export const Client = require('undici/lib/dispatcher/client.js') as typeof Undici.Client
export type Client = Undici.Client
export const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector
export const errors = require('undici/lib/core/errors.js') as typeof Undici.errors
