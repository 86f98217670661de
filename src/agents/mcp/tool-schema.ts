// An aggregated server's tool call checked against the input schema the server listed for it, before
// an approval is filed or taken: an approver never approves a call the tool will refuse, and a
// refused call never uses an approval up. Calls that need no approval go to the server as they are,
// which answers for its own arguments. The validator is the MCP SDK's (ajv, JSON Schema 2020-12 by
// default, draft-07 where the schema says so), loaded at the first gated call.
//
// Compiled validators are kept by the schema's text, a bounded number of them: ajv keeps every
// schema it compiles, so the provider itself is replaced after COMPILES_PER_PROVIDER compiles, and
// a schema's `$id` is left out, as the provider answers a known `$id` with the schema first compiled
// under it (two servers' tools, or a tool whose schema changed, would share one: a review).
//
// A schema is the server's to write and its `pattern`s are RegExps the gateway runs: `(a+)+$`
// against thirty a's and a `!` backtracks for minutes, on the thread every request is served from.
// So each check runs under a time limit (SCHEMA_CHECK_LIMIT_MS, vm's watchdog interrupts it), and a
// schema that once overran it is refused from then on without running again: its tool's gated calls
// are refused, and a server's structured answer is not accepted against it (the SDK client checks
// those against the tool's outputSchema with the validator given here).
import { createContext, Script } from 'node:vm'
import type { JsonSchemaValidator, jsonSchemaValidator } from '@modelcontextprotocol/client'
import type { AjvJsonSchemaValidator } from '@modelcontextprotocol/client/validators/ajv'
import { createLru } from '../../collections/index.ts'

type Validate = JsonSchemaValidator<unknown>
type Schema = Parameters<AjvJsonSchemaValidator['getValidator']>[0]

const CACHED_VALIDATORS = 256
const COMPILES_PER_PROVIDER = 1_000
/** The most one check of a value against a schema may take; a tool's real schemas take microseconds. */
export const SCHEMA_CHECK_LIMIT_MS = 100

let load: Promise<typeof AjvJsonSchemaValidator> | null = null
let provider: AjvJsonSchemaValidator | null = null
let compiles = 0
/** null: a schema the validator cannot compile, which leaves the server to decide. */
const validators = createLru<Validate | null>(CACHED_VALIDATORS)

function loadProvider(): Promise<typeof AjvJsonSchemaValidator> {
  load ??= import('@modelcontextprotocol/client/validators/ajv').then((module) => module.AjvJsonSchemaValidator)
  return load
}

/** Why `args` does not fit the tool's input schema, or null. */
export async function argumentsRefusedBy(schema: object, args: Record<string, unknown>): Promise<string | null> {
  const { $id: _id, ...withoutId } = schema as Record<string, unknown>
  const text = JSON.stringify(withoutId)
  let validate = validators.get(text, Date.now())
  if (validate === undefined) {
    const Provider = await loadProvider()
    if (provider === null || compiles >= COMPILES_PER_PROVIDER) {
      provider = new Provider()
      compiles = 0
    }
    compiles++
    try {
      validate = boundedIfRisky(text, provider.getValidator(withoutId as Schema))
    } catch {
      validate = null
    }
    validators.set(text, validate, Number.POSITIVE_INFINITY)
  }
  if (validate === null) return null
  const result = validate(args)
  return result.valid ? null : (result.errorMessage ?? 'the arguments do not fit its input schema').replace(/^data\b/, 'arguments')
}

/** The SDK's validator with each check under the time limit: for a server's client (its tools' outputSchema). */
export async function boundedSchemaValidator(): Promise<jsonSchemaValidator> {
  const ajv = new (await loadProvider())()
  return { getValidator: <T>(schema: Parameters<jsonSchemaValidator['getValidator']>[0]) => boundedIfRisky(JSON.stringify(schema), ajv.getValidator<T>(schema)) }
}

/**
 * The time limit only where a check can run long: a schema with a `pattern` or `patternProperties`
 * (a RegExp the server wrote); with `uniqueItems`, which Ajv checks for objects and arrays by
 * comparing every item with every other (10,000 small objects, 120 KB of arguments, held the
 * serving thread 7 s; max_body_bytes' worth, hours: a review); or with a reference, through which
 * a schema recurses: alternatives that each recurse into the same value (`anyOf` of two
 * `items: {$ref: …}`) check it 2^depth times (a value nested 24 deep, 3.5 s; 40 deep, most of an
 * hour: a review). Without a reference a check costs at most the schema's size times the value's.
 * vm's timeout starts a watchdog thread for each run, ~0.2 ms of the serving thread a check
 * against ~1 µs without (a review measured it), which every tool call whose schema has none of
 * these paid for nothing.
 */
function boundedIfRisky<T>(schemaText: string, validate: JsonSchemaValidator<T>): JsonSchemaValidator<T> {
  if (/"pattern(Properties)?"\s*:/.test(schemaText)) return withinLimit(validate, true)
  return /"uniqueItems"\s*:\s*true|"\$(ref|dynamicRef|recursiveRef)"\s*:/.test(schemaText) ? withinLimit(validate, false) : validate
}

/** One context for every check: a script run in it with a timeout is interrupted by vm's watchdog, whatever it calls. */
interface Sandbox {
  context: { check: Validate | null; input: unknown }
  script: Script
}
let sandbox: Sandbox | null = null

const TOO_SLOW = `its schema took longer than ${SCHEMA_CHECK_LIMIT_MS} ms to check (a pattern that backtracks without end?), and the gateway refuses what it cannot check`
const TOO_MANY = `its schema took longer than ${SCHEMA_CHECK_LIMIT_MS} ms to check this value (uniqueItems compares every item of an array with every other, a schema's references may check a nested value many times over: send a shorter or shallower one), and the gateway refuses what it cannot check`

/**
 * `validate` run under SCHEMA_CHECK_LIMIT_MS. `sticky` (a pattern: the schema's fault, whatever the
 * value): once it overran, it fails at once from then on. Otherwise (uniqueItems, references: the
 * value's size or depth counts too) only the value that overran is refused; one agent's long array
 * does not refuse everyone's calls.
 */
function withinLimit<T>(validate: JsonSchemaValidator<T>, sticky: boolean): JsonSchemaValidator<T> {
  let overran = false
  return (input) => {
    if (!overran) {
      const { context, script } = (sandbox ??= { context: createContext({ check: null, input: null }) as Sandbox['context'], script: new Script('check(input)') })
      context.check = validate as Validate
      context.input = input
      try {
        return script.runInContext(context, { timeout: SCHEMA_CHECK_LIMIT_MS }) as ReturnType<JsonSchemaValidator<T>>
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw err
        if (!sticky) return { valid: false, data: undefined, errorMessage: TOO_MANY }
        overran = true
      } finally {
        context.check = null
        context.input = null
      }
    }
    return { valid: false, data: undefined, errorMessage: TOO_SLOW }
  }
}
