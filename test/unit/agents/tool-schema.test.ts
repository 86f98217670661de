import { describe, expect, it } from 'vitest'
import { argumentsRefusedBy } from '../../../src/agents/mcp/tool-schema.ts'

describe('a gated server tool\'s arguments against its listed schema', () => {
  it('says why arguments do not fit, and lets fitting ones through', async () => {
    const schema = { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] }
    expect(await argumentsRefusedBy(schema, { message: 'hi' })).toBeNull()
    expect(await argumentsRefusedBy(schema, { message: 7 })).toBe('arguments/message must be string')
    expect(await argumentsRefusedBy(schema, {})).toBe("arguments must have required property 'message'")
  })

  // A review: the SDK's provider answers a schema whose $id it has seen with the schema first
  // compiled under it, so two tools (two servers, or a schema that changed) shared one validator.
  it('judges each schema by itself, whatever its $id', async () => {
    const first = { $id: 'urn:tool-input', type: 'object', properties: { id: { type: 'string' } }, required: ['id'] }
    const second = { $id: 'urn:tool-input', type: 'object', properties: { ticket: { type: 'integer' } }, required: ['ticket'] }
    expect(await argumentsRefusedBy(first, { id: 'x' })).toBeNull()
    expect(await argumentsRefusedBy(second, { ticket: 1 })).toBeNull()
    expect(await argumentsRefusedBy(second, { id: 'x' })).toBe("arguments must have required property 'ticket'")
  })

  it('leaves a schema it cannot compile to the server', async () => {
    expect(await argumentsRefusedBy({ type: 'object', properties: { a: { type: 'nonsense' } } }, { a: 1 })).toBeNull()
  })
})
