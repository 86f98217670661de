// src/datasets/postgres.ts loads pg and pg-cursor when a PostgreSQL datasource first connects, as the
// other PostgreSQL stores do: `bouncer explain`/`secrets` and a gateway whose datasets are SQLite
// compiled its datasources and loaded ~40 modules for nothing.
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runInFreshProcess } from '../../helpers/fresh-process.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

describe('the PostgreSQL driver', () => {
  it('is not loaded by importing the commands that compile a config, nor by building a datasource', () => {
    const script = `const { default: Module } = await import('node:module')
for (const m of ['src/cli/serve.ts', 'src/cli/explain.ts', 'src/cli/secrets.ts']) await import(${JSON.stringify(`${ROOT}/`)} + m)
const { postgresDatasource } = await import(${JSON.stringify(`${ROOT}/src/datasets/postgres.ts`)})
postgresDatasource({ name: 'w', type: 'postgres', url: 'postgres://127.0.0.1:1/none', max_connections: 1 }, { warn() {}, info() {}, error() {}, debug() {} }, { offline: false, key: Buffer.alloc(32) })
console.log(JSON.stringify(Object.keys(Module._cache).filter((file) => /node_modules\\/pg(-cursor)?\\//.test(file))))`
    const loaded = JSON.parse(runInFreshProcess(script)) as string[]
    expect(loaded).toEqual([])
  })
})
