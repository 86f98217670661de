import { describe, expect, it } from 'vitest'
import { argumentsDigest, canonicalJson, redactArguments } from '../../../src/agents/index.ts'

describe('a tool call\'s arguments', () => {
  it('digest the same whatever order the client wrote the keys in', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}')
    expect(argumentsDigest({ region: 'eu', limit: 5 })).toBe(argumentsDigest({ limit: 5, region: 'eu' }))
    expect(argumentsDigest({ region: 'eu' })).not.toBe(argumentsDigest({ region: 'us' }))
    expect(argumentsDigest({})).toMatch(/^[0-9a-f]{64}$/)
  })

  it('digest arguments of any depth, empty arrays and objects included', () => {
    expect(canonicalJson({ z: [], y: {}, x: [[], {}, [1, 'a', true, null]], w: 'q"' })).toBe('{"w":"q\\"","x":[[],{},[1,"a",true,null]],"y":{},"z":[]}')
    // Deeper than any stack: a call refused for nesting too deep is audited with its digest.
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`
    expect(canonicalJson({ x: JSON.parse(deep) as unknown })).toBe(`{"x":${deep}}`)
  })

  it('are logged with secrets redacted, by name and by shape', () => {
    expect(redactArguments({
      region: 'eu',
      password: 'hunter2',
      nested: { apiKey: 'k', list: ['fine', 'Bearer abc.def', 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig'] },
      client_secret: { anything: 1 },
    })).toEqual({
      region: 'eu',
      password: '[redacted]',
      nested: { apiKey: '[redacted]', list: ['fine', '[redacted]', '[redacted]'] },
      client_secret: '[redacted]',
    })
  })
})
