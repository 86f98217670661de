// src/telemetry/logger.ts loads pino when the first logger is made: the commands that make none
// (`bouncer keys`, `audit`, `check`) loaded its ~20 modules (~45 ms of CPU) at each start.
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runInFreshProcess } from '../../helpers/fresh-process.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')

describe('pino', () => {
  it('is not loaded by the commands that log nothing, and is by the first logger', () => {
    const script = `const { default: Module } = await import('node:module')
const pinoFiles = () => Object.keys(Module._cache).filter((file) => /node_modules\\/pino\\//.test(file)).length
for (const m of ['src/cli/keys.ts', 'src/cli/audit.ts', 'src/cli/check.ts', 'src/cli/sessions.ts']) await import(${JSON.stringify(`${ROOT}/`)} + m)
const before = pinoFiles()
const { createLogger } = await import(${JSON.stringify(`${ROOT}/src/telemetry/index.ts`)})
createLogger({ level: 'info', destination: 1 }).info('made')
console.log(JSON.stringify({ before, after: pinoFiles() > 0 }))`
    const lines = runInFreshProcess(script).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(lines.find((line) => 'before' in line)).toEqual({ before: 0, after: true })
    expect(lines.find((line) => 'msg' in line)).toMatchObject({ level: 'info', msg: 'made' })
  })
})
