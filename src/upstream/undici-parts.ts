// The four parts of undici the gateway uses, required from their own files rather than through the
// package's index: `import 'undici'` loads ~110 modules (fetch, WebSocket, EventSource, cookies,
// caches, mocks), and its cookies module reads `globalThis.Headers`, which loads Node's own bundled
// undici as well: ~200 ms of CPU at every start that imports the upstreams (serve, each of its
// worker threads, `check`, `explain`, `secrets`), 2026-12-07. undici's package.json has no
// `exports` map, so its files are its public paths; test/unit/undici-parts.test.ts checks each is
// the same object the index exports, so an undici that moves one fails there, not in production.
import { createRequire } from 'node:module'
import type * as Undici from 'undici'

const require = createRequire(import.meta.url)

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool
export type Pool = Undici.Pool
export const Client = require('undici/lib/dispatcher/client.js') as typeof Undici.Client
export type Client = Undici.Client
export const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector
export const errors = require('undici/lib/core/errors.js') as typeof Undici.errors
