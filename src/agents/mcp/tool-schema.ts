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
import type { AjvJsonSchemaValidator } from '@modelcontextprotocol/client/validators/ajv'
import { createLru } from '../../collections/index.ts'

type Validate = ReturnType<AjvJsonSchemaValidator['getValidator']>
type Schema = Parameters<AjvJsonSchemaValidator['getValidator']>[0]

const CACHED_VALIDATORS = 256
const COMPILES_PER_PROVIDER = 1_000

let load: Promise<typeof AjvJsonSchemaValidator> | null = null
let provider: AjvJsonSchemaValidator | null = null
let compiles = 0
/** null: a schema the validator cannot compile, which leaves the server to decide. */
const validators = createLru<Validate | null>(CACHED_VALIDATORS)

/** Why `args` does not fit the tool's input schema, or null. */
export async function argumentsRefusedBy(schema: object, args: Record<string, unknown>): Promise<string | null> {
  const { $id: _id, ...withoutId } = schema as Record<string, unknown>
  const text = JSON.stringify(withoutId)
  let validate = validators.get(text, Date.now())
  if (validate === undefined) {
    load ??= import('@modelcontextprotocol/client/validators/ajv').then((module) => module.AjvJsonSchemaValidator)
    const Provider = await load
    if (provider === null || compiles >= COMPILES_PER_PROVIDER) {
      provider = new Provider()
      compiles = 0
    }
    compiles++
    try {
      validate = provider.getValidator(withoutId as Schema)
    } catch {
      validate = null
    }
    validators.set(text, validate, Number.POSITIVE_INFINITY)
  }
  if (validate === null) return null
  const result = validate(args)
  return result.valid ? null : (result.errorMessage ?? 'the arguments do not fit its input schema').replace(/^data\b/, 'arguments')
}
