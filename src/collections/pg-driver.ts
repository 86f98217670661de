// pg and pg-cursor, loaded where a PostgreSQL store, audit sink or datasource first connects: a
// gateway or a command with none loads neither (~40 modules, ~5 MB of heap). require caches them.
import { createRequire } from 'node:module'
import type pg from 'pg'
import type Cursor from 'pg-cursor'

const load = createRequire(import.meta.url)

export const loadPg = (): typeof pg => load('pg') as typeof pg
export const loadPgCursor = (): typeof Cursor => load('pg-cursor') as typeof Cursor
