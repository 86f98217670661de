// An aggregated server's tool call checked against the input schema the server listed for it, before
// an approval is filed or taken: an approver never approves a call the tool will refuse, and a
// refused call never uses an approval up. Calls that need no approval go to the server as they are,
// which answers for its own arguments. The validator is the MCP SDK's (ajv, JSON Schema 2020-12 by
// default, draft-07 where the schema says so), loaded at the first gated call.
import type { AjvJsonSchemaValidator } from '@modelcontextprotocol/client/validators/ajv'

type Validate = ReturnType<AjvJsonSchemaValidator['getValidator']>
type Schema = Parameters<AjvJsonSchemaValidator['getValidator']>[0]

let validators: Promise<AjvJsonSchemaValidator> | null = null
/** One compiled validator per listed schema (a list refreshed lists new objects). */
const compiled = new WeakMap<object, Validate | null>()

/** Why `args` does not fit the tool's input schema, or null (a schema the validator cannot compile leaves the server to decide). */
export async function argumentsRefusedBy(schema: object, args: Record<string, unknown>): Promise<string | null> {
  let validate = compiled.get(schema)
  if (validate === undefined) {
    validators ??= import('@modelcontextprotocol/client/validators/ajv').then(({ AjvJsonSchemaValidator }) => new AjvJsonSchemaValidator())
    const provider = await validators
    try {
      validate = provider.getValidator(schema as Schema)
    } catch {
      validate = null
    }
    compiled.set(schema, validate)
  }
  if (validate === null) return null
  const result = validate(args)
  return result.valid ? null : (result.errorMessage ?? 'the arguments do not fit its input schema').replace(/^data\b/, 'arguments')
}
